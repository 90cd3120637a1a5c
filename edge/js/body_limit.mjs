// Imported by the Rust adapter (wasm-bindgen snippet). Request bodies are counted as they
// stream, so the edge's body limit holds whatever the framing: a declared content-length was
// checked by the core already, a chunked body is only known by counting. Chunks pass through
// one by one (no buffering); the limit's verdict is the core's (`UpstreamFailure::BodyTooLarge`).

/**
 * `body` passed through until more than `maxBytes` bytes went by; then the fetch carrying it
 * is aborted (`abortUpload`, set by fetchWithDeadline) and `exceeded` tells the adapter why it
 * failed. Aborting matters: workerd ends an upstream chunked body cleanly (`0\r\n\r\n`) when
 * its source stream merely errors, and the brain would take the first 10 MiB for a complete
 * upload; an aborted fetch resets the connection, so the brain sees a broken body and keeps
 * nothing. The chunk that crosses the limit is never forwarded.
 */
export class BodyLimit {
  constructor(body, maxBytes) {
    this.exceeded = false;
    this.abortUpload = null;
    const reader = body.getReader();
    let seen = 0;
    this.stream = new ReadableStream({
      pull: async (controller) => {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        seen += value.byteLength;
        if (seen > maxBytes) {
          this.exceeded = true;
          const error = new RangeError(`the request body is larger than ${maxBytes} bytes`);
          // Abort first, so the upstream request dies rather than ends.
          this.abortUpload?.(error);
          reader.cancel(error).catch(() => {});
          controller.error(error);
          return;
        }
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
  }
}

/**
 * The whole of `body` (a ReadableStream, or null for none) if it is at most `maxBytes` bytes;
 * `null` as soon as it is longer (the rest is not read). Rejects if the stream fails.
 */
export async function readAtMost(body, maxBytes) {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
