// Imported by the Rust adapter (wasm-bindgen snippet). Wraps an upstream event stream so that a
// stream which breaks off (reset, brain crash) ends with an explicit error event instead of an
// abrupt or clean-looking end. Chunks pass through one by one as they arrive: no buffering.
export function guardEventStream(body, errorEvent) {
  const reader = body.getReader();
  return new ReadableStream({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        console.error("upstream event stream broke off", String(error));
        controller.enqueue(errorEvent);
        controller.close();
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
