// Imported by the Rust adapter (wasm-bindgen snippet). Header lists cross the JS↔wasm boundary
// as one string, "name\nvalue\n" per entry (neither may contain a newline): one string
// conversion per list instead of several runtime calls per header, and no `Headers` object or
// iterator of the edge's own per request. workerd keeps such runtime objects, and the JS
// objects they hold, alive until a full garbage collection, so each one adds to the young
// generation's survivors and to the length of the pauses.

/** The entries of a `Headers` (set-cookie ones separately, as iteration gives them). */
export function headerLines(headers) {
  let lines = "";
  headers.forEach((value, name) => {
    lines += name + "\n" + value + "\n";
  });
  return lines;
}

/** `headerLines`' format back into the `[name, value]` pairs a Request or Response takes. */
export function headerPairs(lines) {
  const parts = lines.split("\n");
  const pairs = [];
  for (let i = 0; i + 1 < parts.length; i += 2) pairs.push([parts[i], parts[i + 1]]);
  return pairs;
}
