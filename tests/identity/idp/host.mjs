// A small host around panva's oidc-provider (OpenID Certified), used as the real identity provider
// in Questline's identity tests. It supplies what the library leaves to its host: accounts, keys,
// clients, and plain HTML login / logout pages that a `requests` session can fill in.
//
// Start: `node host.mjs`; it prints `READY <issuer>` once listening on a free loopback port.
// Test-only control routes (loopback only, never part of a real IdP):
//   POST /__test/clients  {client metadata}  -> register one more client
//   POST /__test/rotate                      -> new signing key first, the old one still published
// Both rebuild the provider from the same configuration; sessions and grants live in the
// module-level memory adapter and survive the rebuild, as they would across a real IdP's restart.
import crypto from "node:crypto";
import http from "node:http";
import Provider from "oidc-provider";

const ACCOUNTS = {
  alice: {
    password: "alice-pw",
    claims: {
      name: "Alice Example",
      email: "alice@acme.test",
      email_verified: true,
      employee_id: "E-100",
      groups: ["staff"],
    },
  },
  bob: {
    password: "bob-pw",
    claims: { name: "Bob Unverified", email: "bob@acme.test", email_verified: false, groups: [] },
  },
  carol: {
    password: "carol-pw",
    claims: { name: "Carol Outsider", email: "carol@other.test", email_verified: true, groups: [] },
  },
  dave: {
    password: "dave-pw",
    claims: {
      name: "Dave Admin",
      email: "dave@acme.test",
      email_verified: true,
      employee_id: "E-200",
      groups: ["questline-admins"],
    },
  },
};

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  return { ...jwk, kid: crypto.randomUUID(), alg: "RS256", use: "sig" };
}

const state = { keys: [newKey()], clients: [], provider: null, handler: null };
const cookieKeys = [crypto.randomBytes(32).toString("hex")];

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html><head><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

function build(issuer) {
  const provider = new Provider(issuer, {
    clients: state.clients,
    jwks: { keys: state.keys },
    cookies: { keys: cookieKeys },
    claims: {
      openid: ["sub"],
      profile: ["name"],
      email: ["email", "email_verified"],
      employee: ["employee_id"],
      groups: ["groups"],
    },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...account.claims }; } };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo: (ctx, resourceIndicator) => ({
          scope: "questline:events questline:read questline:admin",
          audience: resourceIndicator,
          accessTokenTTL: 600,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
      // OpenID Connect Back-Channel Logout 1.0: on sign-out the provider POSTs a logout_token
      // to every client of the session that registered a backchannel_logout_uri.
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // The library's form, plus the confirmation field its default page adds with a button.
          const confirm = form.replace("</form>", '<input type="hidden" name="logout" value="yes"/></form>');
          ctx.body = page("Sign out", `<h1>Sign out?</h1>${confirm}`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page("Signed out", "<h1>Signed out</h1>");
        },
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // Back-channel logout calls Questline on loopback, which the provider's SSRF guard (rightly)
    // refuses in production; this test host's fetch leaves out that guard's dispatcher.
    fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
    ttl: { IdToken: 300, AccessToken: 600, Session: 3600, Grant: 3600, Interaction: 600 },
  });
  provider.proxy = false;
  state.provider = provider;
  state.handler = provider.callback();
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function send(res, status, body, type = "text/html; charset=utf-8") {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

async function interaction(req, res, uid, action) {
  const provider = state.provider;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page("Error", "interaction mismatch"));
  if (action === "login" && req.method === "POST") {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get("login") || "";
    const account = ACCOUNTS[login];
    if (!account || account.password !== form.get("password")) {
      return send(res, 200, loginPage(uid, "Invalid user name or password."));
    }
    return provider.interactionFinished(req, res, { login: { accountId: login } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (details.prompt.name === "login") return send(res, 200, loginPage(uid, ""));
  if (details.prompt.name === "consent") {
    // Consent is granted automatically: this IdP stands in for an enterprise IdP whose admin
    // pre-approved the application, which is how workforce SSO is normally set up.
    const { prompt, params, session, grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(" "));
      }
    }
    const id = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId: id } }, {
      mergeWithLastSubmission: true,
    });
  }
  return send(res, 400, page("Error", `unsupported prompt ${escapeHtml(details.prompt.name)}`));
}

function loginPage(uid, error) {
  return page(
    "Sign in",
    `<h1>Sign in</h1>${error ? `<p class="error">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input name="login" autocomplete="username"/><input name="password" type="password"/>
<button type="submit">Sign in</button></form>`,
  );
}

async function control(req, res, path, issuer) {
  if (req.method !== "POST") return send(res, 405, "{}", "application/json");
  if (path === "/__test/clients") {
    const client = JSON.parse((await readBody(req)) || "{}");
    state.clients = state.clients.filter((c) => c.client_id !== client.client_id).concat([client]);
  } else if (path === "/__test/rotate") {
    state.keys = [newKey(), ...state.keys].slice(0, 2);
  } else {
    return send(res, 404, "{}", "application/json");
  }
  build(issuer);
  return send(res, 200, JSON.stringify({ kids: state.keys.map((k) => k.kid) }), "application/json");
}

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  build(issuer);
  server.on("request", async (req, res) => {
    try {
      const path = new URL(req.url, issuer).pathname;
      if (path.startsWith("/__test/")) return await control(req, res, path, issuer);
      const m = path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
      if (m) return await interaction(req, res, m[1], m[2]);
      return state.handler(req, res);
    } catch (err) {
      if (!res.headersSent) send(res, 400, page("Error", escapeHtml(err.message || String(err))));
    }
  });
  process.stdout.write(`READY ${issuer}\n`);
});

process.on("SIGTERM", () => server.close(() => process.exit(0)));
