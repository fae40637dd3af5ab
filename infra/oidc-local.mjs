// The identity provider of `make local` and the console's browser test: the
// certified `oidc-provider` package, on loopback, with the console as its
// one client and development sign-in (any password) for the people below.
// A stand-in for Okta, Google Workspace or Entra ID: what the console does
// with it is what it does with them.
//
// usage: node infra/oidc-local.mjs PORT CONSOLE_URL
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 8710);
const consoleUrl = (process.argv[3] ?? 'http://127.0.0.1:8700').replace(/\/$/, '');
const issuer = `http://127.0.0.1:${port}`;

// Who can sign in, by the login the provider's page asks for (an address).
const people = {
  'cs-leadership@vendor.example': 'Casey Lead',
  'maya.thompson@vendor.example': 'Maya Thompson',
  'maya@vendor.example': 'Maya Chen',
  'viewer@vendor.example': 'Val Viewer',
};

export const CLIENT_ID = 'milepost-console';
export const CLIENT_SECRET = 'milepost-local-console-secret';

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${consoleUrl}/sign-in/callback`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The console reads who signed in from the ID token, as most providers send it.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    const email = String(id).trim().toLowerCase();
    return {
      accountId: email,
      async claims() {
        return { sub: email, email, email_verified: true, name: people[email] ?? email };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['milepost-local-oidc-cookie-key'] },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider: ${issuer} (client ${CLIENT_ID}, redirect ${consoleUrl}/sign-in/callback)`);
});
