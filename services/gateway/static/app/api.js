// The member's graph: GraphQL over HTTP for queries and mutations, graphql-transport-ws (the
// vendored graphql-ws client) for the live balance. Every request carries the member's bearer
// token; a 401 refreshes it once and tries again.

import { createClient } from "./vendor/graphql-ws/client.js";
import { LoggedOut } from "./auth.js";

export const OVERVIEW = `query MemberOverview($first: Int!) {
  me {
    memberNumber
    email
    balance { available pending held }
    expiringPoints(within: "P30D") { points expiresAt }
    transactions(first: $first) {
      edges { node { id kind points status occurredAt partner { id name } } }
      pageInfo { hasNextPage endCursor }
    }
    links { partner { id name } linkedAt how }
    settings { requireCodeToSpend }
  }
}`;

export const HISTORY = `query MemberHistory($first: Int!, $after: String) {
  me {
    transactions(first: $first, after: $after) {
      edges { node { id kind points status occurredAt partner { id name } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

export const UNLINK = `mutation UnlinkPartner($input: UnlinkPartnerInput!) {
  unlinkPartner(input: $input) { userErrors { code field message } }
}`;

export const UPDATE_SETTINGS = `mutation UpdateMemberSettings($input: UpdateMemberSettingsInput!) {
  updateMemberSettings(input: $input) { userErrors { code field message } }
}`;

export const SPEND_CODE = `mutation CreateSpendCode {
  createSpendCode { code expiresAt userErrors { code field message } }
}`;

const BALANCE_CHANGED = `subscription BalanceChanged {
  balanceChanged { available pending held reason occurredAt }
}`;

/** A GraphQL error the member can read (the message), with its extensions code. */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

export class Api {
  constructor(auth) {
    this.auth = auth;
  }

  async request(query, variables = {}, retried = false) {
    const token = await this.auth.accessToken();
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/graphql-response+json, application/json",
          Authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({ query, variables }),
        cache: "no-store",
      });
    } catch {
      throw new ApiError("The server cannot be reached. Check your connection.", "NETWORK");
    }
    if (response.status === 401 && !retried) {
      await this.auth.refresh();
      return this.request(query, variables, true);
    }
    if (response.status === 401) throw new LoggedOut("token refused");
    const body = await response.json().catch(() => null);
    if (!body) throw new ApiError(`The server answered ${response.status}.`, "HTTP");
    if (body.errors?.length) {
      const [first] = body.errors;
      const code = first.extensions?.code;
      if (code === "UNAUTHENTICATED" && !retried) {
        await this.auth.refresh();
        return this.request(query, variables, true);
      }
      if (code === "UNAUTHENTICATED") throw new LoggedOut(first.message);
      throw new ApiError(first.message, code);
    }
    return body.data;
  }

  /**
   * Subscribes to the member's balance changes. `onEvent(balanceChanged)` on each one;
   * `onState("live" | "connecting" | "offline")`; `onConnected()` after every (re)connection, so
   * the page can catch up on what it missed while away. Returns a function that stops it all.
   *
   * The token goes in connection_init, fresh at every connection. A socket the server closes for
   * an expired or revoked token (4401/4403) is reopened with a refreshed token; any other drop is
   * retried with backoff. graphql-ws gives up on 4401 itself, so this loop owns the retrying.
   */
  live({ onEvent, onState, onConnected }) {
    let stopped = false;
    let client = null;
    let failures = 0;
    const url = new URL("/graphql", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";

    const connect = () => {
      if (stopped) return;
      if (!this.auth.isLoggedIn()) {
        this.auth.onLoggedOut(new LoggedOut("no session"));
        return;
      }
      onState("connecting");
      let closeCode = null;
      let connectedAt = null;
      client = createClient({
        url: url.href,
        lazy: false,
        retryAttempts: 0,
        connectionParams: async () => ({ Authorization: `Bearer ${await this.auth.accessToken()}` }),
        on: {
          connected: () => {
            connectedAt = Date.now();
            onState("live");
            onConnected();
          },
          closed: (event) => {
            closeCode = event?.code ?? null;
          },
        },
        onNonLazyError: () => {},
      });
      const again = async (reason) => {
        if (stopped) return;
        onState("offline");
        client?.dispose();
        const code = reason?.code ?? closeCode;
        let refreshed = false;
        if (code === 4401 || code === 4403) {
          try {
            await this.auth.refresh();
            refreshed = true;
          } catch (error) {
            if (error instanceof LoggedOut) {
              this.auth.onLoggedOut(error);
              return;
            }
          }
        }
        // A connection that lasted counts as a success: the next drop starts the backoff afresh.
        failures = connectedAt && Date.now() - connectedAt > 10_000 ? 1 : failures + 1;
        // A refreshed token reconnects at once, unless the server keeps refusing it.
        const backoff = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random());
        setTimeout(connect, refreshed && failures < 3 ? 0 : backoff);
      };
      client.subscribe(
        { query: BALANCE_CHANGED },
        {
          next: (message) => {
            if (message.data?.balanceChanged) onEvent(message.data.balanceChanged);
          },
          error: again,
          complete: () => again(null),
        }
      );
    };
    connect();
    return () => {
      stopped = true;
      client?.dispose();
    };
  }
}
