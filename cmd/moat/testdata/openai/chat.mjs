// A streamed chat completion through moat's local endpoint with the
// official openai package, as any tool built on it would make one.
// Prints one JSON line per chunk of content, then a line for a model that
// is not granted (the SDK's error), and exits non-zero on anything else.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.MOAT_BASE_URL,
  apiKey: process.env.MOAT_API_KEY, // the output of `moat token`; the mesh identity is the WireGuard peer's
  maxRetries: 0,
});

const stream = await client.chat.completions.create({
  model: "llama",
  stream: true,
  messages: [{ role: "user", content: "hi" }],
});
for await (const chunk of stream) {
  for (const choice of chunk.choices) {
    if (choice.delta?.content) {
      console.log(JSON.stringify({ content: choice.delta.content }));
    }
  }
}

try {
  await client.chat.completions.create({ model: "not-granted", messages: [{ role: "user", content: "hi" }] });
  console.log(JSON.stringify({ refused: false }));
} catch (err) {
  if (!(err instanceof OpenAI.APIError)) throw err;
  console.log(JSON.stringify({ refused: true, status: err.status, code: err.code, message: err.message }));
}
