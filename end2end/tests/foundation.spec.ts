import { expect } from "@playwright/test";
import { createProject, newAccount, signUp, test } from "./helpers";

test("a new user signs up, creates a project and compares all four providers with prices", async ({ page }) => {
  await signUp(page);
  await createProject(page, "Support bot");

  await page.getByTestId("tab-compare").click();
  await expect(page).toHaveURL(/\/compare$/);
  const table = page.getByTestId("compare-table");
  await expect(table).toBeVisible();

  await expect(page.getByTestId("col-claude")).toContainText("Anthropic Claude");
  await expect(page.getByTestId("col-claude")).toContainText("Claude 3.5 Sonnet");
  await expect(page.getByTestId("col-openai")).toContainText("GPT-4o");
  await expect(page.getByTestId("col-gemini")).toContainText("Gemini 1.5 Pro");
  await expect(page.getByTestId("col-llama")).toContainText("Llama 3.1 70B");

  await expect(page.getByTestId("cell-input-claude")).toHaveText("$3.00/1M");
  await expect(page.getByTestId("cell-output-claude")).toHaveText("$15.00/1M");
  await expect(page.getByTestId("cell-input-openai")).toHaveText("$2.50/1M");
  await expect(page.getByTestId("cell-input-gemini")).toHaveText("$1.25/1M");
  await expect(page.getByTestId("cell-input-llama")).toHaveText("$0*");
  await expect(page.getByTestId("cell-context-gemini")).toHaveText("2M");
  await expect(page.getByTestId("cell-context-claude")).toHaveText("200K");
});

test("after hydration, picking another model updates its column without reloading", async ({ page }) => {
  await signUp(page);
  await createProject(page, "Sales bot");
  await page.getByTestId("tab-compare").click();
  await expect(page.getByTestId("cell-input-claude")).toHaveText("$3.00/1M");
  const url = page.url();

  // Until the WASM has hydrated the page, changing the select does nothing;
  // keep choosing until the client-side handler updates the column.
  await expect(async () => {
    await page.getByTestId("pick-claude").selectOption("claude-3-sonnet-20240229");
    await page.getByTestId("pick-claude").selectOption("claude-3-5-haiku-20241022");
    await expect(page.getByTestId("cell-input-claude")).toHaveText("$0.80/1M", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });

  await expect(page.getByTestId("col-model-claude")).toHaveText("Claude 3.5 Haiku");
  await expect(page.getByTestId("cell-vision-claude")).toHaveText("No");
  expect(page.url()).toBe(url);
});

test("a wrong password is refused with a clear message", async ({ page }) => {
  const account = newAccount();
  await signUp(page, account);
  await page.getByTestId("logout").click();
  await expect(page.getByTestId("nav-login")).toBeVisible();

  await page.goto("/");
  await page.getByTestId("email").fill(account.email);
  await page.getByTestId("password").fill("not the password");
  await page.getByTestId("login-submit").click();
  await expect(page.getByTestId("login-error")).toContainText("wrong email or password");
});

test("another user's project is not found", async ({ page, browser }) => {
  await signUp(page);
  await createProject(page, "Private bot");
  const projectUrl = page.url();

  const stranger = await browser.newPage();
  await signUp(stranger);
  await stranger.goto(projectUrl);
  await expect(stranger.getByTestId("project-not-found")).toBeVisible();
  await stranger.close();
});
