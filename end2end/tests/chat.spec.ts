import { expect, Page } from "@playwright/test";
import { createProject, signUp, test } from "./helpers";

// The provider simulator the suite's server talks to, with its fault control API.
const SIM = process.env.COVER_E2E_SIM_URL;
const PRIMARY = "claude-3-5-sonnet-20241022";
// A 1×1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=",
  "base64",
);

function simulated(question: string): string {
  return `This is a simulated answer to: ${question}`;
}

/** The id of the project whose page is open. */
function projectId(page: Page): string {
  const match = new URL(page.url()).pathname.match(/^\/projects\/([^/]+)/);
  if (!match) throw new Error(`not on a project page: ${page.url()}`);
  return match[1];
}

/** Signs up, creates a project, opens its Chat tab and returns the project id. */
async function openChat(page: Page, name: string): Promise<string> {
  await signUp(page);
  await createProject(page, name);
  const id = projectId(page);
  await page.getByTestId("tab-chat").click();
  await expect(page).toHaveURL(new RegExp(`/projects/${id}/chat`));
  return id;
}

/** Starts a conversation (form post or action) and returns its id once it is shown. */
async function startConversation(page: Page): Promise<string> {
  const previous = new URL(page.url()).searchParams.get("c");
  await page.getByTestId("new-conversation").click();
  await page.waitForURL((url) => {
    const c = url.searchParams.get("c");
    return c !== null && c !== previous;
  });
  const id = new URL(page.url()).searchParams.get("c") as string;
  await expect(page.getByTestId("conversation")).toHaveAttribute("data-id", id);
  return id;
}

/** Waits until the WASM has taken over the page (Send then streams). */
async function hydrated(page: Page) {
  await expect(page.getByTestId("chat")).toHaveAttribute("data-hydrated", "true");
}

/** Types a question and sends it (streamed: the page must be hydrated). */
async function ask(page: Page, question: string) {
  await hydrated(page);
  await page.getByTestId("composer-input").fill(question);
  await page.getByTestId("send").click();
}

function lastAnswer(page: Page) {
  return page.locator('[data-test="message"][data-role="assistant"]').last();
}

test("an answer streams in, then shows provider, model, tokens, cost and latency", async ({ page }) => {
  await openChat(page, "Streaming bot");
  await expect(page.getByTestId("chat-empty")).toBeVisible();
  const conversation = await startConversation(page);
  await expect(page.getByTestId("conversation-model")).toHaveText("Claude 3.5 Sonnet");
  await hydrated(page);

  // Hold the request a moment so the waiting state is observable.
  await page.route("**/conversations/*/messages", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 800));
    await route.continue();
  });
  const sent = page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/messages"));
  const url = page.url();
  const question = "Tell me about streaming";
  await ask(page, question);
  const request = await sent;
  expect(request.headers()["accept"]).toBe("text/event-stream");
  expect(request.postDataJSON()).toEqual({ content: question, images: [] });

  // The question shows at once, the answer waits for its first token.
  await expect(page.locator('[data-test="message"][data-role="user"]').last()).toContainText(question);
  const answer = lastAnswer(page);
  await expect(answer.getByTestId("answer-pending")).toBeVisible();
  await expect(page.getByTestId("stop")).toBeVisible();

  await expect(answer.getByTestId("answer-text")).toHaveText(simulated(question));
  await expect(answer).toHaveAttribute("data-status", "complete");
  await expect(answer.getByTestId("answer-pending")).toHaveCount(0);
  await expect(page.getByTestId("stop")).toHaveCount(0);
  await expect(answer.getByTestId("answer-provider")).toHaveText("Anthropic");
  await expect(answer.getByTestId("answer-model")).toHaveText("Claude 3.5 Sonnet");
  await expect(answer.getByTestId("answer-tokens")).toHaveText(/^\d+ in \/ \d+ out tokens/);
  await expect(answer.getByTestId("answer-cost")).toHaveText(/^\$\d+\.\d+$/);
  await expect(answer.getByTestId("answer-latency")).toHaveText(/^\d+ ms/);
  expect(page.url()).toBe(url);

  // The list follows: two messages and their cost.
  const item = page.locator(`[data-test="conversation-item"][data-id="${conversation}"]`);
  await expect(item).toContainText("2 messages");
  await expect(item).toContainText("$");
  await expect(item).toHaveAttribute("aria-current", "page");

  // Thumbs up is stored; pressing it again clears it.
  let rated = page.waitForResponse((r) => r.url().includes("/sfn/chat/rate"));
  await answer.getByTestId("rate-up").click();
  await expect(answer.getByTestId("rate-up")).toHaveAttribute("aria-pressed", "true");
  expect((await rated).ok()).toBe(true);
  await page.reload();
  const stored = lastAnswer(page);
  await expect(stored.getByTestId("answer-text")).toHaveText(simulated(question));
  await expect(stored.getByTestId("answer-model")).toHaveText("Claude 3.5 Sonnet");
  await expect(stored.getByTestId("rate-up")).toHaveAttribute("aria-pressed", "true");
  await hydrated(page);
  rated = page.waitForResponse((r) => r.url().includes("/sfn/chat/rate"));
  await stored.getByTestId("rate-up").click();
  await expect(stored.getByTestId("rate-up")).toHaveAttribute("aria-pressed", "false");
  expect((await rated).ok()).toBe(true);
  await page.reload();
  await expect(lastAnswer(page).getByTestId("rate-up")).toHaveAttribute("aria-pressed", "false");
});

test("images are checked and previewed before sending", async ({ page }) => {
  await openChat(page, "Vision bot");
  await startConversation(page);
  await hydrated(page);
  const attach = page.getByTestId("attach-image");
  await attach.setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await expect(page.getByTestId("attach-error")).toContainText("notes.txt");
  await attach.setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: PNG });
  await expect(page.getByTestId("attach-error")).toHaveCount(0);
  await expect(page.getByTestId("thumbnails").locator("img")).toHaveCount(1);
  await page.getByTestId("remove-image").click();
  await expect(page.getByTestId("thumbnails")).toHaveCount(0);
});

test("a rate-limited primary falls back to GPT-4o mini and the conversation says so", async ({ page, request }) => {
  test.skip(!SIM, "COVER_E2E_SIM_URL is not set");
  const id = await openChat(page, "Fallback bot");
  const patched = await page.request.patch(`/api/projects/${id}/llm-config`, {
    data: { fallbackConfig: { enabled: true, provider: "openai", model: "gpt-4o-mini", retryAttempts: 2 } },
  });
  expect(patched.ok(), await patched.text()).toBe(true);
  await startConversation(page);

  const fault = await request.post(`${SIM}/_sim/faults`, {
    data: { model: PRIMARY, fault: "rate_limit", times: 0 },
  });
  expect(fault.ok(), await fault.text()).toBe(true);
  try {
    const question = "Is anyone there?";
    await ask(page, question);
    const answer = lastAnswer(page);
    const notice = answer.getByTestId("fallback-notice");
    await expect(notice).toContainText("Claude 3.5 Sonnet");
    await expect(notice).toContainText("GPT-4o mini");
    await expect(answer.getByTestId("answer-text")).toHaveText(simulated(question));
    await expect(answer).toHaveAttribute("data-status", "complete");
    await expect(answer.getByTestId("answer-provider")).toHaveText("OpenAI");
    await expect(answer.getByTestId("answer-model")).toHaveText("GPT-4o mini");

    // The notice is stored with the answer.
    await page.reload();
    await expect(lastAnswer(page).getByTestId("fallback-notice")).toContainText("GPT-4o mini");
    await expect(lastAnswer(page).getByTestId("answer-model")).toHaveText("GPT-4o mini");
  } finally {
    await request.delete(`${SIM}/_sim/faults`);
  }
});

test("Stop keeps the partial answer, stored as stopped", async ({ page, request }) => {
  test.skip(!SIM, "COVER_E2E_SIM_URL is not set");
  await openChat(page, "Stop bot");
  await startConversation(page);
  // The primary sends a few tokens, then nothing.
  const fault = await request.post(`${SIM}/_sim/faults`, { data: { model: PRIMARY, fault: "stall", times: 1 } });
  expect(fault.ok(), await fault.text()).toBe(true);
  try {
    const question = "Take your time";
    await ask(page, question);
    const answer = lastAnswer(page);
    await expect(answer.getByTestId("answer-text")).not.toBeEmpty();
    await expect(answer).toHaveAttribute("data-status", "pending");
    await page.getByTestId("stop").click();
    await expect(answer).toHaveAttribute("data-status", "stopped");
    await expect(answer.getByTestId("stopped")).toBeVisible();
    await expect(page.getByTestId("stop")).toHaveCount(0);
    await expect(page.getByTestId("send")).toBeEnabled();

    await page.reload();
    const stored = lastAnswer(page);
    await expect(stored).toHaveAttribute("data-status", "stopped");
    await expect(stored.getByTestId("stopped")).toBeVisible();
    const partial = await stored.getByTestId("answer-text").innerText();
    expect(partial.length).toBeGreaterThan(0);
    expect(simulated(question).startsWith(partial)).toBe(true);
  } finally {
    await request.delete(`${SIM}/_sim/faults`);
  }
});

test("an unknown conversation shows an error, not an empty page", async ({ page }) => {
  const id = await openChat(page, "Lost bot");
  await page.goto(`/projects/${id}/chat?c=no-such-conversation`);
  await expect(page.getByTestId("conversation-error")).toBeVisible();
  await expect(page.getByTestId("new-conversation")).toBeVisible();
});

test("an old conversation keeps its model after the project switches provider", async ({ page }) => {
  const id = await openChat(page, "Switching bot");
  const old = await startConversation(page);
  await expect(page.getByTestId("conversation-model")).toHaveText("Claude 3.5 Sonnet");

  // The e2e server has managed keys for Claude and OpenAI only.
  const patched = await page.request.patch(`/api/projects/${id}/llm-config`, {
    data: { provider: "openai", model: "gpt-4o" },
  });
  expect(patched.ok(), await patched.text()).toBe(true);

  await page.reload();
  await expect(page.getByTestId("conversation-model")).toHaveText("Claude 3.5 Sonnet");
  await ask(page, "Who answers here?");
  await expect(lastAnswer(page).getByTestId("answer-model")).toHaveText("Claude 3.5 Sonnet");
  await expect(lastAnswer(page).getByTestId("answer-provider")).toHaveText("Anthropic");

  const fresh = await startConversation(page);
  await expect(page.getByTestId("conversation-model")).toHaveText("GPT-4o");
  await ask(page, "And here?");
  await expect(lastAnswer(page).getByTestId("answer-model")).toHaveText("GPT-4o");
  await expect(lastAnswer(page).getByTestId("answer-provider")).toHaveText("OpenAI");

  // Newest first, each with its own model; going back finds Claude again.
  const items = page.getByTestId("conversation-item");
  await expect(items).toHaveCount(2);
  await expect(items.nth(0)).toHaveAttribute("data-id", fresh);
  await expect(items.nth(0)).toContainText("GPT-4o");
  await expect(items.nth(1)).toHaveAttribute("data-id", old);
  await expect(items.nth(1)).toContainText("Claude 3.5 Sonnet");
  await items.nth(1).click();
  await expect(page.getByTestId("conversation")).toHaveAttribute("data-id", old);
  await expect(page.getByTestId("conversation-model")).toHaveText("Claude 3.5 Sonnet");
  await expect(lastAnswer(page).getByTestId("answer-text")).toHaveText(simulated("Who answers here?"));
});

test("without JavaScript the plain forms start a conversation, send, and rate", async ({ page, browser }) => {
  const id = await openChat(page, "No-script bot");
  const context = await browser.newContext({
    baseURL: test.info().project.use.baseURL,
    javaScriptEnabled: false,
  });
  await context.addCookies(await page.context().cookies());
  const plain = await context.newPage();
  try {
    await plain.goto(`/projects/${id}/chat`);
    await expect(plain.getByTestId("chat-empty")).toBeVisible();
    await startConversation(plain);
    await expect(plain.getByTestId("conversation-model")).toHaveText("Claude 3.5 Sonnet");
    // Images need the browser side; the Stop button only shows while streaming.
    await expect(plain.getByTestId("attach-image")).toHaveCount(0);
    await expect(plain.getByTestId("stop")).toHaveCount(0);

    const question = "Hello without scripts";
    await plain.getByTestId("composer-input").fill(question);
    await plain.getByTestId("send").click();
    const answer = lastAnswer(plain);
    await expect(answer.getByTestId("answer-text")).toHaveText(simulated(question));
    await expect(answer).toHaveAttribute("data-status", "complete");
    await expect(answer.getByTestId("answer-provider")).toHaveText("Anthropic");
    await expect(answer.getByTestId("answer-model")).toHaveText("Claude 3.5 Sonnet");
    await expect(answer.getByTestId("answer-cost")).toHaveText(/^\$\d+\.\d+$/);
    await expect(plain.locator('[data-test="message"][data-role="user"]').last()).toContainText(question);

    await answer.getByTestId("rate-down").click();
    await expect(lastAnswer(plain).getByTestId("rate-down")).toHaveAttribute("aria-pressed", "true");
    await expect(lastAnswer(plain).getByTestId("rate-up")).toHaveAttribute("aria-pressed", "false");
  } finally {
    await context.close();
  }
});

test("a GPT conversation draws a picture; without JavaScript too; Claude says it cannot", async ({ page, browser }) => {
  const id = await openChat(page, "Drawing bot");
  await startConversation(page);
  await expect(page.getByTestId("no-image-generation")).toContainText("needs a GPT (OpenAI) project");
  await expect(page.getByTestId("generate-image")).toHaveCount(0);

  const patched = await page.request.patch(`/api/projects/${id}/llm-config`, {
    data: { provider: "openai", model: "gpt-4o-mini" },
  });
  expect(patched.ok(), await patched.text()).toBe(true);
  await startConversation(page);
  await hydrated(page);
  await expect(page.getByTestId("image-controls")).toContainText("GPT Image 2");
  await page.getByTestId("composer-input").fill("A red bicycle by the sea");
  await page.getByTestId("image-size").selectOption("1536x1024");
  await page.getByTestId("image-quality").selectOption("low");
  await page.getByTestId("generate-image").click();
  const answer = lastAnswer(page);
  const picture = answer.getByTestId("generated-image").locator("img");
  await expect(picture).toBeVisible();
  await expect(picture).toHaveAttribute("src", /^data:image\/png;base64,/);
  expect(await picture.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight])).toEqual([1536, 1024]);
  await expect(answer.getByTestId("answer-model")).toHaveText("GPT Image 2");
  await expect(answer.getByTestId("answer-cost")).toHaveText(/^\$\d+\.\d+$/);
  await expect(page.locator('[data-test="message"][data-role="user"]').last()).toContainText("A red bicycle by the sea");

  // Before hydration the button is its own form action: the server draws and redirects back.
  const context = await browser.newContext({ baseURL: test.info().project.use.baseURL, javaScriptEnabled: false });
  await context.addCookies(await page.context().cookies());
  const plain = await context.newPage();
  try {
    await plain.goto(page.url());
    await plain.getByTestId("composer-input").fill("A lighthouse at dusk");
    await plain.getByTestId("generate-image").click();
    await expect(plain.getByTestId("generated-image")).toHaveCount(2);
    await expect(plain.locator('[data-test="message"][data-role="user"]').last()).toContainText("A lighthouse at dusk");
  } finally {
    await context.close();
  }
});
