import { APIRequestContext, Browser, expect, Page } from "@playwright/test";
import { createProject, signUp, test } from "./helpers";

const HAIKU = "claude-3-5-haiku-20241022";
const MINI = "gpt-4o-mini";

function projectId(page: Page): string {
  const match = new URL(page.url()).pathname.match(/^\/projects\/([^/]+)/);
  if (!match) throw new Error(`not on a project page: ${page.url()}`);
  return match[1];
}

/** New conversations, each asked one question through the JSON API: the
 * running experiment assigns each to an arm. */
async function answers(request: APIRequestContext, id: string, count: number) {
  for (let i = 0; i < count; i++) {
    const created = await request.post(`/api/projects/${id}/conversations`);
    expect(created.ok(), await created.text()).toBe(true);
    const conversation = (await created.json()).id as string;
    const answered = await request.post(`/api/projects/${id}/conversations/${conversation}/messages`, {
      data: { content: `Question ${i}` },
    });
    expect(answered.ok(), await answered.text()).toBe(true);
  }
}

async function withoutScripts(browser: Browser, page: Page) {
  const context = await browser.newContext({ baseURL: test.info().project.use.baseURL, javaScriptEnabled: false });
  await context.addCookies(await page.context().cookies());
  return context;
}

test("an owner starts an A/B experiment, reads each arm's results and promotes one", async ({ page, browser }) => {
  await signUp(page);
  await createProject(page, "Experiment bot");
  const id = projectId(page);
  await page.goto(`/projects/${id}/performance`);
  await expect(page.getByTestId("performance")).toHaveAttribute("data-hydrated", "true");

  const form = page.getByTestId("experiment-form");
  await expect(form.getByTestId("experiment-plan-projection")).toContainText("no answers in the last 14 days");
  await form.getByTestId("experiment-name").fill("Haiku against GPT-4o mini");
  await form.getByTestId("experiment-metric").selectOption("latency");
  await form.getByTestId("experiment-planned").fill("20");
  await form.getByTestId("experiment-model-a").selectOption(HAIKU);
  await form.getByTestId("experiment-model-b").selectOption(MINI);
  await form.getByTestId("experiment-start").click();

  const card = page.getByTestId("experiment");
  await expect(card).toHaveAttribute("data-state", "running");
  await expect(card).toHaveAttribute("data-provisional", "true");
  await expect(card.getByTestId("experiment-arm")).toHaveCount(2);
  await expect(card.locator('[data-test="experiment-arm"][data-arm="B"]')).toContainText("GPT-4o mini (OpenAI)");
  // One runs at a time: the form is gone while it does.
  await expect(page.getByTestId("experiment-form")).toHaveCount(0);

  await answers(page.request, id, 6);
  await page.reload();
  await expect(page.getByTestId("performance")).toHaveAttribute("data-hydrated", "true");
  const counts = await page.getByTestId("experiment-answers").allTextContents();
  expect(counts.map(Number).reduce((a, b) => a + b, 0)).toBe(6);
  await expect(card.getByTestId("experiment-comparison")).toHaveCount(4);

  // The server renders the same results before any script runs.
  const context = await withoutScripts(browser, page);
  const plain = await context.newPage();
  await plain.goto(`/projects/${id}/performance`);
  await expect(plain.getByTestId("experiment-arm")).toHaveCount(2);
  await context.close();

  await card.locator('[data-test="experiment-promote"][data-arm="A"]').click();
  await expect(card).toHaveAttribute("data-state", "stopped");
  await expect(card.getByTestId("experiment-promoted")).toBeVisible();
  const config = await page.request.get(`/api/projects/${id}/llm-config`);
  expect((await config.json()).model).toBe(HAIKU);
  await expect(page.getByTestId("experiment-form")).toBeVisible();
});
