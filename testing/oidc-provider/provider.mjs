// A real OpenID Provider (oidc-provider 9) on loopback, for bydata's login tests. Not for production.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG.json: {
//   "port": 0,                      // 0: any free port; the issuer is http://127.0.0.1:<port>
//   "clients": [{ "client_id", "client_secret"?, "token_endpoint_auth_method"?, "redirect_uris",
//                 "post_logout_redirect_uris"? }],
//   "users": [{ "sub", "email", "password", "name"?, "groups"?: [], "roles"?: [] }]
// }
// Prints one line "ready <issuer>" when it listens. The login form is oidc-provider's own (devInteractions),
// with the passwords checked in front of it; consent is granted automatically.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider, { interactionPolicy } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map((config.users || []).map((u) => [u.email.toLowerCase(), u]));
const bySub = new Map((config.users || []).map((u) => [u.sub, u]));

const server = createServer();
await new Promise((resolve) => server.listen(config.port || 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

// Public (native) clients get a consent prompt even with a grant; auto-consent covers them too.
const policy = interactionPolicy.base();
policy.get('consent').checks.remove('native_client_prompt');

// Fresh signing keys per run, RSA and EC, so both RS256 and ES256 ID tokens can be asked for per client
// (`id_token_signed_response_alg`).
const key = (kind, opts, kid, alg) => ({
  ...generateKeyPairSync(kind, opts).privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig',
});
const jwks = {
  keys: [key('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'), key('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256')],
};

const provider = new Provider(issuer, {
  jwks,
  interactions: { policy },
  clients: config.clients.map((c) => ({
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    id_token_signed_response_alg: 'RS256',
    ...c,
  })),
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups', 'roles'] },
  // Scope-requested claims go into the ID token itself, as Entra ID sends groups.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, name: u.name || u.email, email: u.email, groups: u.groups || [], roles: u.roles || [] };
      },
    };
  },
  // Auto-consent: a grant for everything the test client asks.
  async loadExistingGrant(ctx) {
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    let grant = id ? await ctx.oidc.provider.Grant.find(id) : undefined;
    if (!grant) {
      grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    }
    grant.addOIDCScope('openid profile email groups');
    grant.addOIDCClaims(['sub', 'name', 'email', 'groups', 'roles']);
    await grant.save();
    return grant;
  },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  cookies: { keys: ['test-only-cookie-key'] },
});

// devInteractions accepts any login; check the user's password (login = e-mail) in front of it and map the
// login to the user's sub.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)) {
    const raw = await new Promise((resolve) => {
      let b = '';
      ctx.req.on('data', (c) => { b += c; });
      ctx.req.on('end', () => resolve(b));
    });
    const form = new URLSearchParams(raw);
    if (form.get('prompt') === 'login') {
      const u = users.get((form.get('login') || '').toLowerCase());
      if (!u || u.password !== form.get('password')) {
        ctx.status = 401;
        ctx.type = 'text';
        ctx.body = 'invalid login';
        return;
      }
      form.set('login', u.sub);
    }
    ctx.req.body = Object.fromEntries(form);
  }
  await next();
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

server.on('request', provider.callback());
console.log(`ready ${issuer}`);
