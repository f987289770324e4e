import { expect, Page } from "@playwright/test";
import { createProject, signUp, test } from "./helpers";

// The one key the test simulator accepts (scripts/test passes it).
const GOOD_KEY = process.env.COVER_E2E_KEY ?? "sk-ant-api03-e2e-valid-key-abcdk4j2";

async function openSettings(page: Page, name: string) {
  await signUp(page);
  await createProject(page, name);
  await page.getByTestId("tab-settings").click();
  await expect(page.getByTestId("settings-form")).toBeVisible();
}

test("changing the provider changes the model list", async ({ page }) => {
  await openSettings(page, "Provider bot");
  const models = page.getByTestId("model");
  await expect(models.locator("option")).toContainText(["Claude 3.5 Sonnet"]);
  await expect(async () => {
    await page.getByTestId("provider").selectOption("openai");
    await expect(models.locator("option").first()).toHaveText("GPT-4o", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  const names = await models.locator("option").allTextContents();
  expect(names.some((n) => n.startsWith("GPT-4o mini"))).toBe(true);
  expect(names.some((n) => n.includes("Claude"))).toBe(false);
  await expect(models).toHaveValue("gpt-4o");
  // OpenAI-only settings appear; the model facts follow the model.
  await page.getByTestId("advanced").locator("summary").click();
  await expect(page.getByTestId("frequency-penalty")).toBeVisible();
  await expect(page.getByTestId("model-facts")).toContainText("128K");
});

test("an out-of-range temperature shows an error and Save is refused", async ({ page }) => {
  await openSettings(page, "Temperature bot");
  await expect(async () => {
    await page.getByTestId("temperature").fill("1.5");
    await expect(page.getByTestId("error-parameters-temperature")).toContainText("between 0 and 1", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByTestId("save")).toBeDisabled();
  await page.getByTestId("temperature").fill("0.9");
  await expect(page.getByTestId("error-parameters-temperature")).toHaveCount(0);
  await expect(page.getByTestId("save")).toBeEnabled();
});

test("a wrong key is refused with the provider's answer and nothing is saved", async ({ page }) => {
  await openSettings(page, "Wrong key bot");
  await page.getByTestId("key-source-byok").check();
  await page.getByTestId("api-key").fill("sk-ant-api03-not-the-right-key-0000");
  await page.getByTestId("save").click();
  await expect(page.getByTestId("error-apiKey")).toContainText("rejected");
  await page.reload();
  await expect(page.getByTestId("api-key-masked")).toHaveText("none");
});

test("a right key saves, shows masked, and survives a reload", async ({ page }) => {
  await openSettings(page, "Right key bot");
  await page.getByTestId("key-source-byok").check();
  await page.getByTestId("api-key").fill(GOOD_KEY);
  await page.getByTestId("save").click();
  await expect(page.getByTestId("save-confirmation")).toContainText("version 2");
  await expect(page.getByTestId("api-key-masked")).toHaveText("sk-ant-...k4j2");
  await page.reload();
  await expect(page.getByTestId("api-key-masked")).toHaveText("sk-ant-...k4j2");
  await expect(page.getByTestId("key-source-byok")).toBeChecked();
  expect(await page.content()).not.toContain(GOOD_KEY);
});

test("Test Connection shows progress, then the result", async ({ page }) => {
  await openSettings(page, "Connection bot");
  // Hold the check for a moment so the progress state is observable.
  await page.route("**/sfn/settings/test", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 800));
    await route.continue();
  });
  await expect(async () => {
    await page.getByTestId("test-connection").click();
    await expect(page.getByTestId("test-connection-spinner")).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByTestId("test-connection-result")).toContainText("accepted the key");
  await expect(page.getByTestId("test-connection-spinner")).toHaveCount(0);

  await page.getByTestId("api-key").fill("sk-ant-typo");
  await page.getByTestId("test-connection").click();
  await expect(page.getByTestId("test-connection-result")).toContainText("rejected");
});

test("Select on Compare switches the project's model", async ({ page }) => {
  await signUp(page);
  await createProject(page, "Switch bot");
  await page.getByTestId("tab-compare").click();
  await expect(async () => {
    await page.getByTestId("pick-openai").selectOption("gpt-4o");
    await page.getByTestId("pick-openai").selectOption("gpt-4o-mini");
    await expect(page.getByTestId("col-model-openai")).toHaveText("GPT-4o mini", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByTestId("select-openai").click();
  await expect(page.getByTestId("select-confirmation")).toContainText("gpt-4o-mini");

  await page.getByTestId("tab-settings").click();
  await expect(page.getByTestId("model")).toHaveValue("gpt-4o-mini");
  await expect(page.getByTestId("provider")).toHaveValue("openai");
});

test("every parameter rule is checked on the page before saving", async ({ page }) => {
  await openSettings(page, "Rules bot");
  const rules: Array<[string, string, string, string]> = [
    // [input hook, bad value, error hook, words in the message]
    ["max-tokens", "9000", "error-parameters-maxTokens", "between 1 and 8192"],
    ["max-tokens", "many", "error-parameters-maxTokens", "whole number"],
    ["top-p", "1.5", "error-parameters-topP", "between 0 and 1"],
    ["temperature", "-1", "error-parameters-temperature", "between 0 and 1"],
    ["retry-attempts", "11", "error-fallbackConfig-retryAttempts", "between 0 and 10"],
  ];
  const good: Record<string, string> = { "max-tokens": "4096", "top-p": "1", temperature: "0.7", "retry-attempts": "3" };
  for (const [input, bad, error, words] of rules) {
    await expect(async () => {
      await page.getByTestId(input).fill(bad);
      await expect(page.getByTestId(error)).toContainText(words, { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await expect(page.getByTestId("save")).toBeDisabled();
    await page.getByTestId(input).fill(good[input]);
    await expect(page.getByTestId(error)).toHaveCount(0);
  }
  // Fallback must differ from the primary model.
  await page.getByTestId("fallback-enabled").check();
  await page.getByTestId("fallback-model").selectOption("claude-3-5-sonnet-20241022");
  await expect(page.getByTestId("error-fallbackConfig-model")).toContainText("differ");
  await page.getByTestId("fallback-model").selectOption("gpt-4o-mini");
  // OpenAI's penalties are ranged −2…2.
  await page.getByTestId("provider").selectOption("openai");
  await page.getByTestId("advanced").locator("summary").click();
  await page.getByTestId("frequency-penalty").fill("2.5");
  await expect(page.getByTestId("error-parameters-frequencyPenalty")).toContainText("between -2 and 2");
  await page.getByTestId("frequency-penalty").fill("0.5");
  await expect(page.getByTestId("save")).toBeEnabled();
  await page.getByTestId("save").click();
  await expect(page.getByTestId("save-confirmation")).toContainText("version 2");
});
