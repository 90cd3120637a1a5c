// Imported by the Rust adapter (wasm-bindgen snippet). The edge's subrequest to the brain with
// its deadline: the deadline covers the wait for the response headers only, so a stream the
// brain has started (SSE, minutes long) is never cut by it. Resolves to null when the deadline
// won (the fetch is aborted), to the Response otherwise; rejects if the fetch fails.
// `bodyLimit` (a BodyLimit of edge/js/body_limit.mjs, or undefined) gets the means to abort
// this fetch once the body it counts passes its limit.
export function fetchWithDeadline(url, init, timeoutMs, bodyLimit) {
  const controller = new AbortController();
  init.signal = controller.signal;
  if (bodyLimit) bodyLimit.abortUpload = (reason) => controller.abort(reason);
  let response;
  try {
    response = fetch(url, init);
  } catch (error) {
    // A fetch the runtime refuses outright (a bad URL or header): a failed fetch like any
    // other, with no timer left behind to hold the request open.
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort();
      resolve(null);
    }, timeoutMs);
    response.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
