// Prints the chat.completion that the official OpenAI Node SDK accumulates from a recorded
// server-sent event stream: the reference that sluice's stream_assembler is checked against
// (tests/unit/parse/sdk_assembly_test.cpp).
//
//   node tests/node/assemble.mjs FILE.sse
//   node tests/node/assemble.mjs --check     (is the pinned SDK installed? prints its version)
//
// The transcript goes through the SDK exactly as a live answer would with
// `client.chat.completions.stream(...)`: the client's own `fetch` is replaced by one that
// answers with the file's bytes (status 200, text/event-stream), so the SDK's SSE decoder
// (`Stream.fromSSEResponse`), its chunk accumulation (`ChatCompletionStream`) and its
// finalisation (`finalChatCompletion()`) all run, offline: nothing is sent anywhere.
//
// Exit status: 0 with the chat.completion JSON on stdout (one line); 1 when the SDK rejects
// the stream (an error event, a stream it cannot finalise), with its error on stderr; 2 for
// a usage error or an unreadable file; 3 when the SDK is not installed as
// tests/node/package-lock.json pins it (run .ci/install-deps).

import { readFile } from 'node:fs/promises';

const EXIT_REJECTED = 1;
const EXIT_USAGE = 2;
const EXIT_NO_SDK = 3;

function fail(status, message) {
    process.stderr.write(`assemble.mjs: ${message}\n`);
    process.exit(status);
}

const args = process.argv.slice(2);
const check = args.length === 1 && args[0] === '--check';
if (args.length !== 1 || (args[0].startsWith('-') && !check))
    fail(EXIT_USAGE, 'usage: node tests/node/assemble.mjs FILE.sse | --check');

// The SDK, as pinned: a stale or missing node_modules must not pass for the reference.
const pinned = JSON.parse(await readFile(new URL('./package.json', import.meta.url), 'utf8'))
    .dependencies.openai;
let OpenAI, installed;
try {
    ({ default: OpenAI } = await import('openai'));
    ({ VERSION: installed } = await import('openai/version'));
} catch (e) {
    fail(EXIT_NO_SDK, `the openai package is not installed in tests/node (${e.code ?? e.message}): run .ci/install-deps`);
}
if (installed !== pinned)
    fail(EXIT_NO_SDK, `tests/node has openai ${installed}, package.json pins ${pinned}: run .ci/install-deps`);
if (check) {
    process.stdout.write(`openai ${installed} on node ${process.versions.node}\n`);
    process.exit(0);
}

let body;
try {
    body = await readFile(args[0]);
} catch (e) {
    fail(EXIT_USAGE, `cannot read ${args[0]}: ${e.message}`);
}

const client = new OpenAI({
    apiKey: 'sk-offline',
    baseURL: 'http://sdk-crosscheck.invalid/v1',
    maxRetries: 0,
    logLevel: 'off',
    fetch: async (url) => {
        if (!String(url).endsWith('/chat/completions'))
            throw new Error(`unexpected request for ${url}`);
        return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    },
});

try {
    const stream = client.chat.completions.stream({
        model: 'recorded',
        messages: [{ role: 'user', content: 'recorded' }],
        stream_options: { include_usage: true },
    });
    const completion = await stream.finalChatCompletion();
    process.stdout.write(JSON.stringify(completion) + '\n');
} catch (e) {
    fail(EXIT_REJECTED, `the SDK rejected the stream: ${e?.constructor?.name ?? 'Error'}: ${e?.message ?? e}`);
}
