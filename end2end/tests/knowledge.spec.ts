import { expect } from "@playwright/test";
import { createProject, signUp, test } from "./helpers";

// The e2e server embeds through the simulator (Voyage for Claude projects,
// OpenAI for GPT ones), whose vectors share dimensions between texts that
// share words: the refunds question finds the refunds section.
const HANDBOOK = `# Acme support handbook

## Refunds

Refunds are paid back to the original card within 14 days of the returned parcel reaching our warehouse.

## Shipping

Parcels leave Rotterdam every weekday. Standard delivery takes 3 to 5 working days.
`;

test("a document is uploaded, embedded with live progress, cited in chat and re-embedded on a switch", async ({ page }) => {
  await signUp(page);
  await createProject(page, "Knowledge bot");
  await page.getByTestId("tab-knowledge").click();
  await expect(page.getByTestId("knowledge-empty")).toBeVisible();
  await expect(page.getByLabel("Document (text, Markdown, HTML or PDF)")).toBeVisible();

  // Upload: a plain form post, answered by a redirect back to the tab.
  await page.getByTestId("knowledge-file").setInputFiles({
    name: "handbook.md",
    mimeType: "text/markdown",
    buffer: Buffer.from(HANDBOOK),
  });
  await page.getByTestId("knowledge-upload").click();
  await expect(page.getByTestId("knowledge-uploaded")).toContainText("handbook.md was added");
  await expect(page.getByTestId("document-show")).toHaveText("handbook.md");
  await expect(page.getByTestId("document-chunks")).toHaveText("2");
  await expect(page.getByTestId("knowledge-status")).toHaveAttribute("data-state", "ready");
  await expect(page.getByTestId("knowledge-status-text")).toContainText("embedded with Voyage 3.5");

  // The answer cites the refunds section.
  await page.getByTestId("tab-chat").click();
  await page.getByTestId("new-conversation").click();
  await page.waitForURL((url) => url.searchParams.get("c") !== null);
  await expect(page.getByTestId("chat")).toHaveAttribute("data-hydrated", "true");
  await page.getByTestId("composer-input").fill("When are refunds paid back?");
  await page.getByTestId("send").click();
  const citations = page.getByTestId("answer-citations").last();
  await expect(citations).toBeVisible();
  await citations.locator("summary").click();
  await expect(citations.getByTestId("citation-document").first()).toHaveText("handbook.md");
  await expect(citations.getByTestId("citation").first()).toContainText("Refunds");

  // The settings page says before Save that a switch to GPT re-embeds.
  await page.getByTestId("tab-settings").click();
  const change = page.getByTestId("embedding-change");
  await expect(change).toHaveAttribute("data-reembed", "false");
  // (Hydration may still be under way: select until the page reacts.)
  await expect(async () => {
    await page.getByTestId("provider").selectOption("openai");
    await expect(change).toHaveAttribute("data-reembed", "true", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(change).toContainText("Saving re-embeds 2 chunks with Text Embedding 3 Small");
  // Fixing the embedding model to Voyage: nothing would be redone.
  await page.getByTestId("embedding-model").selectOption("voyage-3.5");
  await expect(change).toHaveAttribute("data-reembed", "false");
  await page.getByTestId("embedding-model").selectOption("");
  await page.getByTestId("save").click();
  await expect(page.getByTestId("save-confirmation")).toBeVisible();
  // The progress (live over SSE) ends ready with the new model.
  await expect(page.getByTestId("knowledge-status-text")).toContainText(
    "Ready: 2 chunks embedded with Text Embedding 3 Small",
  );

  // The old conversation still shows its answer and citation; a new one on
  // GPT cites from the new index.
  await page.getByTestId("tab-chat").click();
  await page.getByTestId("conversation-item").filter({ hasText: "refunds" }).first().click();
  await expect(page.getByTestId("answer-text").first()).toContainText("refunds");
  await expect(page.getByTestId("answer-citations").first()).toBeVisible();
  await page.getByTestId("new-conversation").click();
  await expect(page.getByTestId("conversation-model")).toContainText("GPT");
  await expect(page.getByTestId("chat")).toHaveAttribute("data-hydrated", "true");
  await page.getByTestId("composer-input").fill("When are refunds paid back?");
  await page.getByTestId("send").click();
  await expect(page.getByTestId("answer-citations").last()).toBeVisible();
  await expect(page.getByTestId("answer-provider").last()).toContainText("OpenAI");

  // Deleting asks first, then the list is empty.
  await page.getByTestId("tab-knowledge").click();
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByTestId("document-delete").click();
  await expect(page.getByTestId("knowledge-empty")).toBeVisible();
});
