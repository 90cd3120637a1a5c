// A real OpenID Connect provider (the pinned npm `oidc-provider`) on loopback, for end-to-end
// tests of signing in at the edge: authorization code flow, PKCE S256 required, no refresh
// tokens (the edge refreshes its own session). Not for anything but tests.
//
//   node scripts/oidc-provider.mjs '<config JSON>'       (or the JSON in env OIDC_TEST_CONFIG;
//                                                         the argument wins when both are given)
//
// Config: {"clients": [{"client_id": "…", "client_secret"?: "…", "redirect_uris": ["…"],
//                       "token_endpoint_auth_method"?: "client_secret_basic" | "client_secret_post" | "none"}],
//          "access_token_ttl_secs"?: 600, "id_token_ttl_secs"?: 600}
// A client with a secret authenticates with client_secret_basic unless it says otherwise; one
// without is public ("none").
//
// Listens on 127.0.0.1, on a port the OS picks; prints one line, {"issuer":"http://127.0.0.1:<port>"},
// once it serves, then serves until its stdin closes (so it never outlives the process that
// spawned it). Signing keys (RS256 and ES256) are generated at start; the JWKS is at the
// discovery document's jwks_uri.
//
// Sign-in is oidc-provider's devInteractions: any login name is accepted (the password is not
// checked) and becomes the account id (`sub`). Every account has `name` ("User <login>"),
// `email` (<login>@example.test) and `roles`, which holds "edgebrain:operator" when the login
// starts with "operator". All of them are in the ID token (conformIdTokenClaims: false).
// Consent is one form post ("Continue"), as oidc-provider's dev interactions ask it.
//
// For tests of a relying party's caching, GET /test/discovery-requests answers how often the
// discovery document was asked for and when last: {"count": n, "last_ms": <epoch ms> | null}.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer } from "node:http";

// Quiet: errors only, and stdout carries nothing but the issuer line. oidc-provider prints its
// development-only notices (in-memory adapter, devInteractions, …) with console.warn/info.
for (const level of ["log", "info", "warn", "debug"]) console[level] = () => {};

const raw = process.argv[2] ?? process.env.OIDC_TEST_CONFIG;
if (!raw) {
  console.error("usage: oidc-provider.mjs '<config JSON>' (or set OIDC_TEST_CONFIG)");
  process.exit(2);
}
const config = JSON.parse(raw);
if (!Array.isArray(config.clients) || config.clients.length === 0) {
  console.error("config: `clients` must be a non-empty array");
  process.exit(2);
}

// Imported after console is quieted: the module warns at load time on runtimes it does not support.
const { default: Provider } = await import("oidc-provider");

const server = createServer();
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, "127.0.0.1", resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

function signingKey(type, options, alg) {
  const jwk = generateKeyPairSync(type, options).privateKey.export({ format: "jwk" });
  return { ...jwk, alg, use: "sig", kid: `${alg.toLowerCase()}-${randomBytes(6).toString("hex")}` };
}

const clients = config.clients.map((client) => ({
  client_id: client.client_id,
  ...(client.client_secret ? { client_secret: client.client_secret } : {}),
  redirect_uris: client.redirect_uris,
  response_types: ["code"],
  grant_types: ["authorization_code"],
  token_endpoint_auth_method: client.token_endpoint_auth_method ?? (client.client_secret ? "client_secret_basic" : "none"),
  id_token_signed_response_alg: "RS256",
}));

const ttl = (secs, fallback) => (Number.isInteger(secs) && secs > 0 ? secs : fallback);

const provider = new Provider(issuer, {
  clients,
  jwks: {
    keys: [
      // The first key of an algorithm signs; RS256 is every client's ID token algorithm.
      signingKey("rsa", { modulusLength: 2048 }, "RS256"),
      signingKey("ec", { namedCurve: "P-256" }, "ES256"),
    ],
  },
  cookies: { keys: [randomBytes(32).toString("base64url")] },
  pkce: { required: () => true },
  responseTypes: ["code"],
  scopes: ["openid", "profile", "email"],
  claims: {
    openid: ["sub", "roles"],
    profile: ["name"],
    email: ["email", "email_verified"],
  },
  // The claims of the granted scopes go into the ID token too, not only to userinfo.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: `User ${sub}`,
          email: `${sub}@example.test`,
          email_verified: true,
          roles: sub.startsWith("operator") ? ["edgebrain:operator"] : [],
        };
      },
    };
  },
  ttl: {
    AccessToken: ttl(config.access_token_ttl_secs, 600),
    IdToken: ttl(config.id_token_ttl_secs, 600),
  },
});
// Errors only: a failure of the provider itself (not a client's invalid request).
provider.on("server_error", (_ctx, error) => console.error("oidc-provider server_error:", error));

const discoveryRequests = { count: 0, last_ms: null };
const serveProvider = provider.callback();
server.on("request", (request, response) => {
  const path = request.url.split("?")[0];
  if (path === "/test/discovery-requests") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(discoveryRequests));
    return;
  }
  if (path === "/.well-known/openid-configuration") {
    discoveryRequests.count += 1;
    discoveryRequests.last_ms = Date.now();
  }
  serveProvider(request, response);
});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

process.stdin.on("data", () => {});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
