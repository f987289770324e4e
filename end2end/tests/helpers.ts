import { expect, Page, test as base } from "@playwright/test";

/** Playwright's `test`, which also reports what went wrong inside the page
 * (uncaught errors, console errors: a panic during hydration, a chunk that
 * did not load) when a test fails, so a page that never hydrates says why. */
export const test = base.extend<{ pageProblems: void }>({
  pageProblems: [
    async ({ page }, use, testInfo) => {
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console error: ${message.text()}`);
      });
      page.on("requestfailed", (request) =>
        problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`));
      await use();
      if (testInfo.status !== testInfo.expectedStatus && problems.length > 0) {
        console.log(`In the page during "${testInfo.title}":\n  ${problems.join("\n  ")}`);
      }
    },
    { auto: true },
  ],
});

/** A fresh, unique account for one test. */
export function newAccount(): { email: string; password: string } {
  const id = `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  return { email: `user-${id}@example.com`, password: "correct horse battery" };
}

/** Signs up through the page and waits for the projects screen. */
export async function signUp(page: Page, account = newAccount()) {
  await page.goto("/signup");
  await page.getByTestId("email").fill(account.email);
  await page.getByTestId("password").fill(account.password);
  await page.getByTestId("signup-submit").click();
  await expect(page).toHaveURL(/\/projects$/);
  await expect(page.getByTestId("current-user")).toHaveText(account.email);
  return account;
}

/** Creates a project on the projects screen and opens its Compare tab. */
export async function createProject(page: Page, name: string) {
  await page.getByTestId("project-name").fill(name);
  await page.getByTestId("create-project").click();
  const link = page.getByTestId("project-link").filter({ hasText: name });
  await expect(link).toBeVisible();
  await link.click();
  await expect(page.getByTestId("project-title")).toHaveText(name);
}
