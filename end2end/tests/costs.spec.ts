import { APIRequestContext, Browser, expect, Page } from "@playwright/test";
import { createProject, signUp, test } from "./helpers";

// The app talks to the provider simulator; the e2e server has Cover-managed
// keys for Claude and OpenAI only.
const CURRENT = "claude-3-5-sonnet-20241022";
const NANOS_PER_USD = 1_000_000_000n;

/** A spend line of the usage API (camelCase, as `model::costs::SpendLine`). */
interface SpendLine {
  key: string;
  label: string;
  costNanos: number;
  unpricedAttempts: number;
  attempts: number;
}

/** Mirrors `model::money::format_decimal`: at least two decimals, no lost digits. */
function formatDecimal(nanos: number): string {
  const n = BigInt(Math.trunc(nanos));
  const sign = n < 0n ? "-" : "";
  const abs = n < 0n ? -n : n;
  const whole = abs / NANOS_PER_USD;
  const frac = (abs % NANOS_PER_USD).toString().padStart(9, "0");
  const trimmed = frac.replace(/0+$/, "");
  return `${sign}${whole}.${trimmed.length < 2 ? frac.slice(0, 2) : trimmed}`;
}

/** Mirrors `model::money::format_usd`: "$3.00", "$0.01875", "-$1.50". */
function formatUsd(nanos: number): string {
  const text = formatDecimal(nanos);
  return text.startsWith("-") ? `-$${text.slice(1)}` : `$${text}`;
}

/** Mirrors `components::spend::format_count`: 1248 → "1,248". */
function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** Mirrors `components::spend::spend_text`: never $0 for an unknown price. */
function formatSpend(line: SpendLine): string {
  if (line.unpricedAttempts === 0) return formatUsd(line.costNanos);
  if (line.unpricedAttempts >= line.attempts && line.costNanos === 0) return "unpriced";
  return `${formatUsd(line.costNanos)} + ${formatCount(line.unpricedAttempts)} unpriced`;
}

/** The id of the project whose page is open. */
function projectId(page: Page): string {
  const match = new URL(page.url()).pathname.match(/^\/projects\/([^/]+)/);
  if (!match) throw new Error(`not on a project page: ${page.url()}`);
  return match[1];
}

/** Creates a project on the projects screen and returns its id. */
async function newProject(page: Page, name: string): Promise<string> {
  await createProject(page, name);
  return projectId(page);
}

/** Starts a conversation and asks one question through the JSON API (the
 * page's session cookie authenticates); returns the conversation id. */
async function askInNewConversation(request: APIRequestContext, id: string, question: string): Promise<string> {
  const created = await request.post(`/api/projects/${id}/conversations`);
  expect(created.ok(), await created.text()).toBe(true);
  const conversation = (await created.json()).id as string;
  const answered = await request.post(`/api/projects/${id}/conversations/${conversation}/messages`, {
    data: { content: question },
  });
  expect(answered.ok(), await answered.text()).toBe(true);
  return conversation;
}

/** The project's cost report as programs see it, once it counts `conversations`
 * (usage rows are written in batches, so wait for them). */
async function usage(request: APIRequestContext, id: string, conversations: number) {
  let report: any;
  await expect
    .poll(
      async () => {
        const response = await request.get(`/api/projects/${id}/llm-usage`);
        expect(response.ok(), await response.text()).toBe(true);
        report = await response.json();
        return report.conversations;
      },
      { timeout: 20_000 },
    )
    .toBe(conversations);
  return report;
}

/** A project with two answered conversations; returns its id. */
async function projectWithUsage(page: Page, name: string): Promise<string> {
  await signUp(page);
  const id = await newProject(page, name);
  await askInNewConversation(page.request, id, "How much does a question cost?");
  await askInNewConversation(page.request, id, "And a second one?");
  return id;
}

/** Opens the cost page and waits for the browser side to take over. */
async function openCosts(page: Page, id: string) {
  await page.goto(`/projects/${id}/costs`);
  await expect(page.getByTestId("costs")).toHaveAttribute("data-hydrated", "true");
}

async function currentModel(request: APIRequestContext, id: string): Promise<string> {
  const response = await request.get(`/api/projects/${id}/llm-config`);
  expect(response.ok(), await response.text()).toBe(true);
  return (await response.json()).model;
}

/** A second browser context without JavaScript, signed in as `page`'s user. */
async function withoutScripts(browser: Browser, page: Page) {
  const context = await browser.newContext({ baseURL: test.info().project.use.baseURL, javaScriptEnabled: false });
  await context.addCookies(await page.context().cookies());
  return context;
}

test("the cost page shows exactly what the usage API reports", async ({ page, browser }) => {
  const id = await projectWithUsage(page, "Costs bot");
  const report = await usage(page.request, id, 2);
  expect(report.total.costNanos).toBeGreaterThan(0);
  expect(report.currentModel).toBe(CURRENT);
  expect(report.whatIf.length).toBeGreaterThan(0);

  await openCosts(page, id);
  await expect(page.getByTestId("cost-period")).toContainText("Last 30 days");
  await expect(page.getByTestId("cost-current-model")).toHaveText("Claude 3.5 Sonnet");
  await expect(page.getByTestId("cost-total")).toHaveText(formatSpend(report.total));
  await expect(page.getByTestId("cost-conversations")).toHaveText(formatCount(report.conversations));
  await expect(page.getByTestId("cost-average")).toHaveText(formatUsd(report.avgCostPerConversationNanos));
  await expect(page.getByTestId("unpriced-warning")).toHaveCount(report.total.unpricedAttempts > 0 ? 1 : 0);

  // Every other model, cheapest first, with its re-priced amount.
  const items = page.getByTestId("what-if-list").getByTestId("what-if-item");
  await expect(items).toHaveCount(report.whatIf.length);
  const shown = await items.evaluateAll((els) => els.map((el) => el.getAttribute("data-model")));
  expect(shown).not.toContain(CURRENT);
  const priced = report.whatIf.filter((w: any) => w.costNanos !== null);
  const cheapest = priced.reduce((a: any, b: any) => (b.costNanos < a.costNanos ? b : a));
  expect(shown[0]).toBe(cheapest.model);
  for (const w of report.whatIf) {
    const item = page.locator(`[data-test="what-if-item"][data-model="${w.model}"]`);
    await expect(item.getByTestId("what-if-amount")).toHaveText(w.costNanos === null ? "unpriced" : formatUsd(w.costNanos));
    if (w.differencePermille !== null && w.differencePermille < 0) {
      await expect(item.getByTestId("what-if-difference")).toContainText("cheaper");
    } else if (w.differencePermille !== null && w.differencePermille > 0) {
      await expect(item.getByTestId("what-if-difference")).toContainText("more expensive");
    }
  }

  // Chart, breakdowns, tokens, projection and export.
  const chart = page.getByTestId("spend-chart");
  await expect(chart).toHaveAttribute("role", "img");
  await expect(chart).toHaveAttribute("aria-label", /Spend per day/);
  await expect(page.getByTestId("by-model")).toContainText("Claude 3.5 Sonnet");
  await expect(page.getByTestId("by-model").getByTestId("spend-amount").first()).toHaveText(formatSpend(report.byModel[0]));
  await expect(page.getByTestId("by-provider").getByTestId("spend-row")).toHaveCount(report.byProvider.length);
  await expect(page.getByTestId("token-analytics").getByTestId("token-row")).toHaveCount(report.byModel.length);
  await expect(page.getByTestId("suggestion")).toHaveCount(report.suggestions.length);
  // The projection moves with the clock; its month is stable.
  await expect(page.getByTestId("projection")).toContainText(report.projection.month);
  await expect(page.getByTestId("projection-amount")).toHaveText(/^\$\d+\.\d+$/);
  await expect(page.getByTestId("csv-export")).toHaveAttribute(
    "href",
    `/api/projects/${id}/llm-usage.csv?from=${report.from}&to=${report.to}`,
  );
  const csv = await page.request.get(`/api/projects/${id}/llm-usage.csv?from=${report.from}&to=${report.to}`);
  expect(csv.ok(), await csv.text()).toBe(true);

  // A quick link changes the period in place; the URL drives the report.
  await page.getByTestId("period-7").click();
  await expect(page).toHaveURL(/from=\d{4}-\d{2}-\d{2}&to=/);
  await expect(page.getByTestId("cost-period")).toContainText("Last 7 days");
  await expect(page.getByTestId("cost-total")).toHaveText(formatSpend(report.total));

  // The server renders the whole page: it reads the same without JavaScript.
  const context = await withoutScripts(browser, page);
  try {
    const plain = await context.newPage();
    await plain.goto(`/projects/${id}/costs`);
    await expect(plain.getByTestId("cost-total")).toHaveText(formatSpend(report.total));
    await expect(plain.getByTestId("what-if-item")).toHaveCount(report.whatIf.length);
    await expect(plain.getByTestId("spend-chart")).toBeVisible();
    // The period form is a plain GET form.
    await plain.getByTestId("period-from").fill(report.to);
    await plain.getByTestId("period-apply").click();
    await expect(plain).toHaveURL(new RegExp(`from=${report.to}`));
    await expect(plain.getByTestId("cost-period")).toContainText("Today");
  } finally {
    await context.close();
  }
});

test("the performance screen measures each model from the project's answers, before hydration too", async ({ page, browser }) => {
  const id = await projectWithUsage(page, "Measured bot");
  await usage(page.request, id, 2);
  const response = await page.request.get(`/api/projects/${id}/llm-performance`);
  expect(response.ok(), await response.text()).toBe(true);
  const report = await response.json();
  const line = report.models.find((m: { model: string }) => m.model === CURRENT);
  expect(line.attempts).toBe(2);

  const check = async (view: Page) => {
    await view.goto(`/projects/${id}/performance`);
    const row = view.locator(`[data-test="performance-row"][data-model="${CURRENT}"]`);
    await expect(row.getByTestId("performance-attempts")).toHaveText("2");
    await expect(row.getByTestId("performance-success")).toHaveText("100.0 %");
    // Two answers are too few for a bare percentile: marked, with their n.
    await expect(row.getByTestId("performance-p50")).toHaveAttribute("data-low-sample", "true");
    await expect(row.getByTestId("performance-p50")).toContainText("(n=2)");
    await expect(view.getByTestId("latency-chart")).toBeVisible();
    await expect(view.getByTestId("performance-no-errors")).toBeVisible();
  };
  await check(page);
  const context = await withoutScripts(browser, page);
  await check(await context.newPage());
  await context.close();
});

test("Switch Model on the recommendation changes the project's model", async ({ page }) => {
  const id = await projectWithUsage(page, "Switch costs bot");
  await usage(page.request, id, 2);
  await openCosts(page, id);
  const button = page.getByTestId("switch-model");
  await expect(button).toBeVisible();
  const target = (await button.getAttribute("data-model")) as string;
  expect(target).not.toBe(CURRENT);
  await expect(page.getByTestId("recommendation")).toHaveAttribute("data-model", target);

  // Dismissing the confirmation changes nothing.
  page.once("dialog", (dialog) => dialog.dismiss());
  await button.click();
  await expect(page.getByTestId("switch-confirmation")).toHaveCount(0);
  expect(await currentModel(page.request, id)).toBe(CURRENT);

  page.once("dialog", (dialog) => dialog.accept());
  await button.click();
  await expect(page.getByTestId("switch-confirmation")).toContainText("configuration version");
  await expect.poll(() => currentModel(page.request, id)).toBe(target);
  // The report follows: the project now runs on the recommended model.
  await expect(page.getByTestId("cost-current-model")).toHaveAttribute("data-model", target);
});

test("the budget form refuses a bad limit next to the field and saves a good one", async ({ page }) => {
  await signUp(page);
  const id = await newProject(page, "Budget bot");
  await openCosts(page, id);
  // On Cover's managed keys a new project has the workspace's default budget.
  await expect(page.getByTestId("budget-status")).toContainText("workspace's default");
  await expect(page.getByTestId("budget-limit")).toHaveValue("");

  await page.getByTestId("budget-limit").fill("lots");
  await page.getByTestId("budget-save").click();
  const error = page.getByTestId("budget-limit-error");
  await expect(error).toBeVisible();
  await expect(error).not.toBeEmpty();
  await expect(page.getByTestId("budget-limit")).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByTestId("budget-saved")).toHaveCount(0);

  await page.getByTestId("budget-limit").fill("250");
  await page.getByTestId("budget-webhook").fill("https://example.com/hooks/budget");
  await page.getByTestId("budget-save").click();
  await expect(page.getByTestId("budget-saved")).toBeVisible();
  await expect(page.getByTestId("budget-status")).toContainText("$250.00");
  await expect(page.getByTestId("budget-limit-error")).toHaveCount(0);
  await expect(page.getByTestId("budget-progress")).toBeVisible();

  await page.reload();
  await expect(page.getByTestId("budget-status")).toContainText("$250.00");
  await expect(page.getByTestId("budget-status")).toHaveAttribute("data-state", "ok");
  await expect(page.getByTestId("budget-limit")).toHaveValue("250.00");
  await expect(page.getByTestId("budget-webhook")).toHaveValue("https://example.com/hooks/budget");
});

/** Signs in as the workspace admin: the account in COVER_E2E_ADMIN_EMAIL /
 * COVER_E2E_ADMIN_PASSWORD when set, else a fresh account, which is the admin
 * only when it is the workspace's first. False when no admin is available. */
async function signInAsAdmin(page: Page): Promise<boolean> {
  const email = process.env.COVER_E2E_ADMIN_EMAIL;
  const password = process.env.COVER_E2E_ADMIN_PASSWORD;
  if (email && password) {
    const response = await page.request.post("/api/auth/login", { data: { email, password } });
    expect(response.ok(), await response.text()).toBe(true);
    await page.goto("/projects");
  } else {
    await signUp(page);
  }
  const me = await (await page.request.get("/api/auth/me")).json();
  return me.role === "admin";
}

test("the admin page shows workspace spend for the admin", async ({ page }) => {
  const admin = await signInAsAdmin(page);
  test.skip(!admin, "needs the workspace's first (admin) account: run this file alone or set COVER_E2E_ADMIN_EMAIL/PASSWORD");
  const name = `Admin spend bot ${Date.now()}`;
  const id = await newProject(page, name);
  const conversation = await askInNewConversation(page.request, id, "What does the workspace spend?");
  await usage(page.request, id, 1);
  const response = await page.request.get("/api/admin/llm-usage");
  expect(response.ok(), await response.text()).toBe(true);
  const workspace = await response.json();

  await page.goto("/admin");
  await expect(page.getByTestId("admin-spend-total")).toHaveText(formatSpend(workspace.total));
  await expect(page.getByTestId("admin-period")).toContainText("Last 30 days");
  await expect(page.getByTestId("admin-by-provider")).toContainText(workspace.byProvider[0].label);
  await expect(page.getByTestId("admin-by-model")).toContainText("Claude 3.5 Sonnet");
  const project = page.getByTestId("admin-by-project").locator(`[data-key="${id}"]`);
  await expect(project).toContainText(name);
  await expect(project.locator("a")).toHaveAttribute("href", `/projects/${id}/costs`);
  await expect(page.getByTestId("admin-monthly").getByTestId("admin-monthly-row").first()).toBeVisible();
  const top = page.getByTestId("admin-top-conversations");
  await expect(top.locator(`a[href="/projects/${id}/chat?c=${conversation}"]`)).toBeVisible();
  await expect(top.locator(`[data-id="${conversation}"]`)).toContainText(name);
  await expect(page.getByTestId("admin-csv-export")).toHaveAttribute("href", /^\/api\/admin\/llm-usage\.csv\?from=/);
  // The project list is still there.
  await expect(page.getByTestId("admin-project-row").filter({ hasText: name })).toBeVisible();
});

test("the admin sets what a self-hosted model costs", async ({ page }) => {
  const admin = await signInAsAdmin(page);
  test.skip(!admin, "needs the workspace's first (admin) account: run this file alone or set COVER_E2E_ADMIN_EMAIL/PASSWORD");
  await page.goto("/admin");
  // The refusal is shown in place by the hydrated form (the admin screen is a lazy route).
  await expect(page.getByTestId("self-hosted-rates")).toHaveAttribute("data-hydrated", "true");
  await page.getByTestId("rate-model").selectOption("llama-3.1-405b");
  await page.getByTestId("rate-date").fill("2021-03-04");
  // Neither rate given: refused, nothing stored.
  await page.getByTestId("rate-save").click();
  await expect(page.getByTestId("rate-error")).toContainText("per hour");
  await page.getByTestId("rate-per-hour").fill("2.50");
  await page.getByTestId("rate-save").click();
  const row = page.locator('[data-test="internal-rate"][data-model="llama-3.1-405b"]');
  await expect(row).toContainText("2021-03-04");
  await expect(row).toContainText("$2.50");
  const rates = await (await page.request.get("/api/admin/internal-rates")).json();
  expect(rates.rates.some((r: { model: string; perHourNanos: number }) =>
    r.model === "llama-3.1-405b" && r.perHourNanos === 2_500_000_000)).toBe(true);
});

test("the admin caps managed-key spend and allows a private host on the admin page", async ({ page }) => {
  const admin = await signInAsAdmin(page);
  test.skip(!admin, "needs the workspace's first (admin) account: run this file alone or set COVER_E2E_ADMIN_EMAIL/PASSWORD");
  // The forms work as plain posts before hydration and as actions after, so
  // this does not wait for hydration (a bad entry's 422 is tested on the API).
  await page.goto("/admin");
  await expect(page.getByTestId("managed-spend")).toContainText("Spent with managed keys in");
  // A cap far above what the suite spends, so other specs keep answering.
  await page.getByTestId("managed-cap-usd").fill("10000");
  await page.getByTestId("managed-budget-save").click();
  await expect(page.getByTestId("managed-spend")).toContainText("of the $10000.00 cap");
  const limits = await (await page.request.get("/api/admin/managed-budget")).json();
  expect(limits.capUsd).toBe("10000.00");

  await page.getByTestId("private-hosts-list").fill("gpu.internal");
  await page.getByTestId("private-hosts-save").click();
  await expect.poll(async () => (await (await page.request.get("/api/admin/private-hosts")).json()).admin)
    .toEqual(["gpu.internal"]);
  await page.goto("/admin");
  await expect(page.getByTestId("private-hosts-list")).toHaveValue("gpu.internal");

  await page.getByTestId("managed-cap-usd").fill("");
  await page.getByTestId("managed-budget-save").click();
  await expect(page.getByTestId("managed-spend")).toContainText("no workspace cap is set");
});

test("a member does not see workspace spend", async ({ page }) => {
  await signUp(page);
  const me = await (await page.request.get("/api/auth/me")).json();
  test.skip(me.role === "admin", "this account is the workspace's first, so it is the admin");
  await page.goto("/admin");
  await expect(page.getByTestId("admin-error")).toBeVisible();
  await expect(page.getByTestId("admin-spend-total")).toHaveCount(0);
  const response = await page.request.get("/api/admin/llm-usage");
  expect(response.status()).toBe(403);
});

test("Compare on a sample shows one answer per chosen model with its cost", async ({ page }) => {
  await signUp(page);
  await createProject(page, "Sample bot");
  await page.getByTestId("tab-compare").click();
  await expect(page.getByTestId("compare-table")).toBeVisible();

  const question = "Which of you is cheapest?";
  const run = page.getByTestId("compare-sample-run");
  // The button works once the page has hydrated and a question is typed.
  await expect(async () => {
    await page.getByTestId("compare-sample-prompt").fill("");
    await page.getByTestId("compare-sample-prompt").fill(question);
    await expect(run).toBeEnabled({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });

  // Claude and OpenAI have keys on this server; leave the others out.
  await expect(page.getByTestId("compare-sample-model-claude")).toBeChecked();
  await page.getByTestId("compare-sample-model-gemini").uncheck();
  await page.getByTestId("compare-sample-model-llama").uncheck();
  // Columns follow their pick: compare GPT-4o mini instead of GPT-4o.
  await page.getByTestId("pick-openai").selectOption("gpt-4o-mini");
  await expect(page.getByTestId("compare-sample-model-openai").locator("xpath=..")).toContainText("GPT-4o mini");

  // Hold the call a moment so the progress state is observable.
  await page.route("**/sfn/compare/sample", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 800));
    await route.continue();
  });
  await run.click();
  await expect(page.getByTestId("compare-sample-spinner")).toBeVisible();

  const results = page.getByTestId("compare-sample-result");
  await expect(results).toHaveCount(2);
  await expect(page.getByTestId("compare-sample-spinner")).toHaveCount(0);
  for (const model of [CURRENT, "gpt-4o-mini"]) {
    const result = page.locator(`[data-test="compare-sample-result"][data-model="${model}"]`);
    await expect(result).toHaveAttribute("data-status", "ok");
    await expect(result.getByTestId("compare-sample-answer")).toContainText(question);
    await expect(result.getByTestId("compare-sample-cost")).toHaveText(/^\$\d+\.\d+$/);
    await expect(result.getByTestId("compare-sample-latency")).toHaveText(/^\d+ ms$/);
    await expect(result.getByTestId("compare-sample-tokens")).toHaveText(/^[\d,]+ in \/ [\d,]+ out tokens$/);
  }
  await expect(page.getByTestId("compare-sample-failed")).toHaveCount(0);
});
