// OpenAI's official Node SDK, unchanged, pointed at Cover's gateway (COVER_GATEWAY_URL,
// a running `cover serve` whose providers are the simulator): any provider through the
// project default, a stream with its usage chunk, a tool round trip, vision, the models
// list, image generation, errors as the SDK's own classes, and a spent budget it does not
// retry. Every call has a 20 s timeout, so a hang fails its test by name.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, test } from "node:test";
import OpenAI from "openai";

const URL_BASE = (process.env.COVER_GATEWAY_URL ?? "").replace(/\/$/, "");
const SONNET = "claude-3-5-sonnet-20241022";
const MINI = "gpt-4o-mini";
const ANSWER = "This is a simulated answer to: Hello there";
const HELLO = [{ role: "user", content: "Hello there" }];
const TIMEOUT_MS = 20_000;
const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather",
      parameters: {
        type: "object",
        properties: { city: { type: "string", description: "City name" } },
        required: ["city"],
      },
    },
  },
];

let cookie = "";
let token = "";

/** A JSON call to Cover's own API with the signed-in session. */
async function api(method, path, body) {
  const response = await fetch(`${URL_BASE}${path}`, {
    method,
    headers: { "content-type": "application/json", cookie },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const setCookie = response.headers.get("set-cookie");
  if (setCookie) cookie = setCookie.split(";")[0];
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
  return response.status === 204 ? null : response.json();
}

/** A project of the signed-in account and a `chat` token for it. */
async function newProject(name) {
  const project = await api("POST", "/api/projects", { name });
  const created = await api("POST", `/api/projects/${project.id}/tokens`, { name: "node sdk" });
  return { project: project.id, token: created.secret };
}

function client(options = {}) {
  return new OpenAI({ baseURL: `${URL_BASE}/v1`, apiKey: token, maxRetries: 0, timeout: TIMEOUT_MS, ...options });
}

before(async () => {
  assert.ok(URL_BASE, "COVER_GATEWAY_URL must point at a running `cover serve` (scripts/test starts one)");
  const email = `node-sdk-${randomUUID().slice(0, 12)}@example.com`;
  await api("POST", "/api/auth/signup", { email, password: "correct horse battery" });
  ({ token } = await newProject("Node SDK gateway"));
});

test("the project default reaches Claude, with Cover's facts in the headers", async () => {
  const { data, response } = await client()
    .chat.completions.create({ model: "cover/default", messages: HELLO })
    .withResponse();
  assert.equal(response.headers.get("x-cover-provider"), "claude");
  assert.equal(response.headers.get("x-cover-fallback"), "none");
  assert.equal(data.model, SONNET);
  assert.equal(data.choices[0].message.content, ANSWER);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
  assert.equal(data.usage.cost_usd, response.headers.get("x-cover-cost-usd"));
});

test("a stream with include_usage ends with the usage chunk", async () => {
  const stream = await client().chat.completions.create({
    model: MINI,
    messages: HELLO,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  assert.equal(text, ANSWER);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
  assert.ok(Number(last.usage.cost_usd) > 0);
});

test("a tool round trip, and streamed tool calls carry their index", async () => {
  const asked = [{ role: "user", content: "Paris" }];
  const first = await client().chat.completions.create({ model: MINI, messages: asked, tools: TOOLS, tool_choice: "required" });
  assert.equal(first.choices[0].finish_reason, "tool_calls");
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
  const second = await client().chat.completions.create({
    model: MINI,
    tools: TOOLS,
    messages: [
      ...asked,
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", tool_call_id: call.id, content: "18 °C and sunny" },
    ],
  });
  assert.equal(second.choices[0].finish_reason, "stop");
  assert.match(second.choices[0].message.content, /^This is a simulated answer/);

  const stream = await client().chat.completions.create({
    model: SONNET,
    messages: asked,
    tools: TOOLS,
    tool_choice: { type: "function", function: { name: "get_weather" } },
    stream: true,
  });
  const pieces = [];
  for await (const chunk of stream) {
    const calls = chunk.choices[0]?.delta?.tool_calls;
    if (calls) pieces.push(...calls);
  }
  assert.ok(pieces.length > 0);
  assert.ok(pieces.every((p) => p.index === 0));
  assert.deepEqual(JSON.parse(pieces.map((p) => p.function?.arguments ?? "").join("")), { city: "Paris" });
});

test("an image reaches a vision model", async () => {
  const completion = await client().chat.completions.create({
    model: MINI,
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Hello there" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
        ],
      },
    ],
  });
  assert.equal(completion.choices[0].message.content, ANSWER);
});

test("the models list is what the project can route to", async () => {
  const ids = new Set();
  const owners = new Set();
  for await (const model of client().models.list()) {
    ids.add(model.id);
    owners.add(model.owned_by);
  }
  assert.ok(ids.has(SONNET) && ids.has(MINI));
  // This server has managed Claude and OpenAI keys only.
  assert.deepEqual([...owners].sort(), ["claude", "openai"]);
});

test("images.generate draws a PNG priced in the headers", async () => {
  const { data, response } = await client()
    .images.generate({ model: "gpt-image-1", prompt: "A lighthouse at dusk", size: "1024x1024", quality: "low" })
    .withResponse();
  assert.equal(response.headers.get("x-cover-model"), "gpt-image-1");
  const png = Buffer.from(data.data[0].b64_json, "base64");
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.readUInt32BE(16), 1024);
  // A low square gpt-image-1 picture bills 272 output tokens.
  assert.equal(data.usage.output_tokens, 272);
  assert.equal(data.usage.cost_usd, response.headers.get("x-cover-cost-usd"));
});

test("errors are the SDK's own classes, naming the parameter", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: SONNET, messages: HELLO, temperature: 1.5 }),
    (error) => error instanceof OpenAI.BadRequestError && error.param === "temperature",
  );
  await assert.rejects(
    client().images.generate({ model: "gpt-image-1", prompt: "A lighthouse", size: "999x999" }),
    (error) => error instanceof OpenAI.BadRequestError && error.param === "size",
  );
  await assert.rejects(
    client({ apiKey: "cov_not-a-real-token" }).chat.completions.create({ model: MINI, messages: HELLO }),
    (error) => error instanceof OpenAI.AuthenticationError,
  );
});

test("a spent budget is a rate limit the SDK does not retry", async () => {
  const spent = await newProject("Node SDK budget");
  await api("PUT", `/api/projects/${spent.project}/budget`, { limitUsd: "0.000001", webhookUrl: null });
  let sent = 0;
  const counting = (url, init) => {
    sent += 1;
    return fetch(url, init);
  };
  const retrying = client({ apiKey: spent.token, maxRetries: 3, fetch: counting });
  await assert.rejects(
    retrying.chat.completions.create({ model: "cover/default", messages: HELLO }),
    (error) => error instanceof OpenAI.RateLimitError && error.code === "budget_exceeded",
  );
  assert.equal(sent, 1, "x-should-retry: false stops the SDK's own retries");
});
