import { expect } from "@playwright/test";
import { createProject, newAccount, signUp, test } from "./helpers";

test("an owner's invitation link makes an account in the project, and the member sees its settings read-only", async ({ page, browser }) => {
  await signUp(page);
  await createProject(page, "Team bot");
  await page.getByTestId("tab-settings").click();
  await expect(page.getByTestId("members")).toBeVisible();
  const invitee = newAccount();
  // Before hydration the form posts and reloads; after it the link shows in place.
  await expect(async () => {
    await page.getByTestId("invite-email").fill(invitee.email);
    await page.getByTestId("invite-submit").click();
    await expect(page.getByTestId("invitation-link")).toBeVisible({ timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  const link = (await page.getByTestId("invitation-link").locator("code").textContent()) ?? "";
  expect(link).toMatch(/^\/signup\?invitation=inv_/);

  const context = await browser.newContext();
  const other = await context.newPage();
  await other.goto(link);
  await expect(other.getByTestId("invitation-summary")).toContainText("Team bot");
  await expect(other.getByTestId("email")).toHaveValue(invitee.email);
  await other.getByTestId("password").fill(invitee.password);
  await other.getByTestId("signup-submit").click();
  await expect(other).toHaveURL(/\/projects$/);
  await other.getByTestId("project-link").filter({ hasText: "Team bot" }).click();
  await other.getByTestId("tab-settings").click();
  await expect(other.getByTestId("read-only")).toBeVisible();
  // The fields sit in a disabled fieldset: every control in it is disabled.
  await expect(other.getByTestId("settings-fields")).toHaveAttribute("disabled", "");
  await expect(other.getByTestId("temperature")).toBeDisabled();
  await expect(other.getByTestId("save")).toBeDisabled();
  await expect(other.getByTestId("token-form")).toHaveCount(0);
  await expect(other.getByTestId("invite-form")).toHaveCount(0);

  // The link worked once: opened again, it says so.
  const third = await (await browser.newContext()).newPage();
  await third.goto(link);
  await expect(third.getByTestId("invitation-error")).toContainText("used already");

  await page.reload();
  await expect(page.getByTestId("member-item").filter({ hasText: invitee.email })).toContainText("member");
  await context.close();
});
