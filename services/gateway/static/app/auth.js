// Signing in and out: OAuth 2 authorization code with PKCE (RFC 7636, S256) against this gateway, as a
// public client (no secret). The verifier and state wait in sessionStorage across the redirect to
// the login page; the tokens live in sessionStorage too (this tab only, gone when it closes), so a
// reload keeps the member logged in. The access token is refreshed before it expires; refresh
// tokens rotate on every use, so the new one always replaces the old at once. "Sign out" revokes
// the refresh token (RFC 7009), which ends the whole sign-in at the server.

const PENDING = "coalition.app.login"; // {state, verifier, redirectUri} while on the login page
const SESSION = "coalition.app.session"; // {accessToken, refreshToken, expiresAt}
const AUTHORIZE = "/oauth/authorize";
const TOKEN = "/oauth/token";
const REVOKE = "/oauth/revoke";

/** Thrown when the member must log in again (no session, or the refresh token was refused). */
export class LoggedOut extends Error {}

function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(digest);
}

/** Where the login page sends the member back: this app's own page, `<origin>/app/`. */
export function redirectUri() {
  return new URL("./", document.baseURI).href;
}

export class Auth {
  constructor(clientId, scope) {
    this.clientId = clientId;
    this.scope = scope;
    this.refreshing = null; // one refresh at a time: rotation makes a second one a replay
    this.timer = null;
    this.onLoggedOut = () => {};
  }

  session() {
    const raw = sessionStorage.getItem(SESSION);
    return raw ? JSON.parse(raw) : null;
  }

  isLoggedIn() {
    return this.session() !== null;
  }

  /** Sends the browser to the login page; the code comes back to `redirectUri()`. */
  async login() {
    // 32 random bytes: a 43-character verifier, RFC 7636's minimum length and 256 bits.
    const verifier = randomString(32);
    const state = randomString(16);
    const uri = redirectUri();
    sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, redirectUri: uri }));
    const url = new URL(AUTHORIZE, location.origin);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.clientId,
      redirect_uri: uri,
      scope: this.scope,
      state,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
    }).toString();
    location.assign(url.href);
  }

  /**
   * On the way back from the login page: exchanges `code` for tokens when `state` is the one this
   * tab sent. Returns true when this URL was a login's answer (handled, successfully or not).
   * Throws an Error with a message for the member when the login failed.
   */
  async completeLogin(params) {
    if (!params.has("code") && !params.has("error")) return false;
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    if (!pending || params.get("state") !== pending.state) {
      // Not an answer to a login this tab started: never exchange a code someone else chose.
      throw new Error("That login link is not from this tab. Please sign in again.");
    }
    if (params.has("error")) {
      const why = params.get("error_description") || params.get("error");
      throw new Error(params.get("error") === "access_denied" ? "Login cancelled." : `Login failed: ${why}`);
    }
    await this.tokenRequest({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: pending.redirectUri,
      client_id: this.clientId,
      code_verifier: pending.verifier,
    });
    return true;
  }

  async tokenRequest(form) {
    let response;
    try {
      response = await fetch(TOKEN, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form),
        cache: "no-store",
      });
    } catch {
      throw new Error("The server cannot be reached. Please try again.");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.access_token) {
      if (body.error === "invalid_grant" || body.error === "invalid_client") {
        this.logout();
        throw new LoggedOut(body.error_description || body.error);
      }
      throw new Error(`The server refused the login (${body.error || response.status}).`);
    }
    const lifetime = Number(body.expires_in) || 900;
    const previous = this.session();
    sessionStorage.setItem(
      SESSION,
      JSON.stringify({
        accessToken: body.access_token,
        refreshToken: body.refresh_token || previous?.refreshToken || null,
        expiresAt: Date.now() + lifetime * 1000,
        lifetime,
      })
    );
    this.schedule();
  }

  /** Refreshes a little before expiry: a fifth of the lifetime early, at most a minute. */
  schedule() {
    clearTimeout(this.timer);
    const session = this.session();
    if (!session?.refreshToken) return;
    const early = Math.min(60_000, (session.lifetime * 1000) / 5);
    const wait = Math.max(0, session.expiresAt - early - Date.now());
    this.timer = setTimeout(() => {
      this.refresh().catch((error) => {
        if (error instanceof LoggedOut) this.onLoggedOut(error);
        else this.timer = setTimeout(() => this.schedule(), 10_000); // offline: try again soon
      });
    }, wait);
  }

  refresh() {
    if (!this.refreshing) {
      const session = this.session();
      if (!session?.refreshToken) return Promise.reject(new LoggedOut("no session"));
      this.refreshing = this.tokenRequest({
        grant_type: "refresh_token",
        refresh_token: session.refreshToken,
        client_id: this.clientId,
      }).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** A usable access token: the current one, or a refreshed one when it is (nearly) expired. */
  async accessToken() {
    if (this.refreshing) await this.refreshing;
    const session = this.session();
    if (!session) throw new LoggedOut("no session");
    if (session.expiresAt - Date.now() < 5_000) {
      await this.refresh();
      return this.session().accessToken;
    }
    return session.accessToken;
  }

  /** Forgets the tokens (a refused refresh, a session that has ended). */
  logout() {
    clearTimeout(this.timer);
    sessionStorage.removeItem(SESSION);
  }

  /**
   * Signs out: forgets the tokens at once, then revokes the refresh token at the server (RFC 7009
   * as a public client naming itself; that ends the whole sign-in, its access tokens included).
   * Resolves to whether the server confirmed; the tokens are gone from this tab either way.
   */
  async signOut() {
    // A refresh in flight would store its new tokens after they were forgotten: let it land first
    // (revoking any token of the sign-in, rotated or not, ends all of it).
    if (this.refreshing) await this.refreshing.catch(() => {});
    const session = this.session();
    this.logout();
    if (!session?.refreshToken) return true;
    try {
      const response = await fetch(REVOKE, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          token: session.refreshToken,
          token_type_hint: "refresh_token",
          client_id: this.clientId,
        }),
        cache: "no-store",
        keepalive: true, // finishes even if the member closes the tab right away
        signal: AbortSignal.timeout(10_000),
      });
      return response.ok;
    } catch {
      return false;
    }
  }
}
