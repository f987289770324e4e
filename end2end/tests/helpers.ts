import { expect, Page } from "@playwright/test";

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
