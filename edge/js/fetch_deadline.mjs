// Imported by the Rust adapter (wasm-bindgen snippet). The edge's subrequest to the brain with
// its deadline: the deadline covers the wait for the response headers only, so a stream the
// brain has started (SSE, minutes long) is never cut by it. Resolves to null when the deadline
// won (the fetch is aborted), to the Response otherwise; rejects if the fetch fails.
export function fetchWithDeadline(url, init, timeoutMs) {
  const controller = new AbortController();
  init.signal = controller.signal;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort();
      resolve(null);
    }, timeoutMs);
    fetch(url, init).then(
      (response) => {
        clearTimeout(timer);
        resolve(response);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
