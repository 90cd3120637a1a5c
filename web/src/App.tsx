import { useCallback, useEffect, useState } from "react";
import type { AgentList, AuthMe, Thread, WhoAmI } from "@edgebrain/types";
import { api, bearerToken, errorText, failure, isOperator, setBearerToken } from "./api";
import { AgentPicker } from "./components/AgentPicker";
import { ChatView } from "./components/ChatView";
import { DatasetsPanel } from "./components/DatasetsPanel";
import { DocumentsPanel } from "./components/DocumentsPanel";
import { OperatorsPanel } from "./components/OperatorsPanel";
import { QueryPanel } from "./components/QueryPanel";
import { ThreadList } from "./components/ThreadList";
import { UsagePanel } from "./components/UsagePanel";

type Tab = "chat" | "documents" | "datasets" | "query" | "usage" | "operators";

const TAB_NAMES: { [tab in Tab]: string } = {
  chat: "Chat",
  documents: "Documents",
  datasets: "Datasets",
  query: "Query",
  usage: "Usage",
  operators: "Operators",
};

/** The open thread lives in the address (`#thread=<id>`), so a reload finds it again. */
function threadFromLocation(): string | null {
  return new URLSearchParams(window.location.hash.replace(/^#/, "")).get("thread");
}

/**
 * Who is signed in, and the way to sign in or out. Sign-in is the edge's (`/auth/login`, an
 * OpenID provider, cookies this code never sees); the control appears only when the edge says a
 * provider is configured (`/auth/me`). A bearer token handed over in the address
 * (`#access_token=…`) also signs in, and a refused one is an error, never a silent anonymous.
 */
function Identity(props: { who: WhoAmI | null; me: AuthMe | null; onError: (message: string) => void; onChange: () => void }) {
  const byToken = bearerToken() !== null;
  const edgeUser = props.me?.user ?? null;
  const label = props.who
    ? props.who.user_id
      ? `signed in as ${edgeUser?.name ?? props.who.user_id}`
      : "anonymous (edge session)"
    : "…";
  const signOut = async () => {
    const response = await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
    if (response.ok) window.location.assign("/");
    else props.onError(errorText(await failure(response)));
  };
  return (
    <div className="identity">
      <span data-testid="identity">{label}</span>
      {byToken ? (
        <button
          type="button"
          onClick={() => {
            setBearerToken(null);
            props.onChange();
          }}
        >
          Sign out
        </button>
      ) : edgeUser ? (
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      ) : props.me?.signin_available ? (
        <a className="button" href={`/auth/login?return_to=${encodeURIComponent(window.location.pathname + window.location.hash)}`}>
          Sign in
        </a>
      ) : null}
    </div>
  );
}

/** Which agent answers in a thread, in words (a thread without one uses the default agent). */
function agentLabel(agents: AgentList | null, thread: Thread | undefined): string | null {
  if (!thread) return null;
  if (thread.agent) return thread.agent === agents?.default_agent ? `${thread.agent} (default)` : thread.agent;
  return agents ? `${agents.default_agent} (default)` : null;
}

export function App() {
  const [tab, setTab] = useState<Tab>("chat");
  const [who, setWho] = useState<WhoAmI | null>(null);
  const [me, setMe] = useState<AuthMe | null>(null);
  const [threads, setThreads] = useState<Array<Thread>>([]);
  const [current, setCurrent] = useState<string | null>(threadFromLocation);
  const [error, setError] = useState<string | null>(null);
  const [identityVersion, setIdentityVersion] = useState(0);
  /** The conversation list as a drawer (narrow screens). */
  const [drawer, setDrawer] = useState(false);
  /** The agents a new conversation may be given (`null` until known, or when listing failed). */
  const [agents, setAgents] = useState<AgentList | null>(null);
  /** The agent chosen for the next new conversation (`null`: the default agent). */
  const [newAgent, setNewAgent] = useState<string | null>(null);
  const operator = isOperator(who);
  const tabs: ReadonlyArray<Tab> = operator
    ? ["chat", "documents", "datasets", "query", "usage", "operators"]
    : ["chat", "documents", "datasets", "query", "usage"];

  // Signed out (or the scope was withdrawn) while on the operators' tab.
  useEffect(() => {
    if (tab === "operators" && !operator) setTab("chat");
  }, [tab, operator]);

  const select = useCallback((id: string | null) => {
    setCurrent(id);
    setDrawer(false);
    history.replaceState(null, "", id ? `#thread=${encodeURIComponent(id)}` : window.location.pathname);
  }, []);

  const refresh = useCallback(async () => {
    try {
      const page = await api.listThreads();
      setThreads(page.threads);
      return page.threads;
    } catch (reason) {
      setError(errorText(reason));
      return [];
    }
  }, []);

  useEffect(() => {
    setError(null);
    // whoami first: a new visitor's first answer carries the edge's session cookie, which every
    // later call then sends (concurrent first calls would each be given a session).
    api
      .whoami()
      .then(setWho)
      .then(() => api.me())
      .then(setMe)
      .catch((reason: unknown) => setError(errorText(reason)))
      .then(() => api.listAgents())
      .then(setAgents, (reason: unknown) => setError(errorText(reason)))
      .then(() => refresh())
      .then((list) => {
        const wanted = threadFromLocation();
        if (wanted && !list.some((thread) => thread.id === wanted)) select(list[0]?.id ?? null);
        else if (!wanted && list[0]) select(list[0].id);
      });
  }, [refresh, select, identityVersion]);

  const create = async () => {
    try {
      const thread = await api.createThread({ title: null, agent: newAgent });
      await refresh();
      select(thread.id);
      setTab("chat");
    } catch (reason) {
      setError(errorText(reason));
    }
  };

  return (
    <div className="app">
      <header>
        <h1>edgebrain</h1>
        <div className="tabs" role="tablist">
          {tabs.map((name) => (
            <button key={name} type="button" role="tab" aria-selected={tab === name} onClick={() => setTab(name)}>
              {TAB_NAMES[name]}
            </button>
          ))}
        </div>
        <Identity who={who} me={me} onError={setError} onChange={() => setIdentityVersion((version) => version + 1)} />
      </header>
      {error ? (
        <p className="error banner" role="alert">
          {error}
        </p>
      ) : null}
      <main className={tab === "chat" ? "chat-main" : ""}>
        {tab === "chat" ? (
          <div className="chat-layout">
            {drawer ? <div className="drawer-backdrop" onClick={() => setDrawer(false)} aria-hidden="true" /> : null}
            <ThreadList
              open={drawer}
              onClose={() => setDrawer(false)}
              threads={threads}
              current={current}
              onSelect={select}
              onCreate={() => void create()}
              agentPicker={<AgentPicker agents={agents} value={newAgent} onChange={setNewAgent} />}
              onRename={(id, title) => {
                api
                  .renameThread(id, { title })
                  .then(() => refresh())
                  .catch((reason: unknown) => setError(errorText(reason)));
              }}
              onDelete={(id) => {
                api
                  .deleteThread(id)
                  .then(() => refresh())
                  .then((list) => {
                    if (id === current) select(list[0]?.id ?? null);
                  })
                  .catch((reason: unknown) => setError(errorText(reason)));
              }}
            />
            {current ? (
              <ChatView
                key={`${current}:${identityVersion}`}
                threadId={current}
                title={threads.find((thread) => thread.id === current)?.title ?? null}
                agent={agentLabel(agents, threads.find((thread) => thread.id === current))}
                onActivity={() => void refresh()}
                onOpenThreads={() => setDrawer(true)}
              />
            ) : (
              <div className="conversation empty">
                <button type="button" className="threads-toggle" onClick={() => setDrawer(true)} aria-label="Show conversations">
                  ☰ Conversations
                </button>
                <p>Start a conversation to ask questions about your data.</p>
                <AgentPicker agents={agents} value={newAgent} onChange={setNewAgent} />
                <button type="button" onClick={() => void create()}>
                  New conversation
                </button>
              </div>
            )}
          </div>
        ) : tab === "documents" ? (
          <DocumentsPanel key={identityVersion} />
        ) : tab === "operators" && operator && who ? (
          <OperatorsPanel
            key={identityVersion}
            owner={who.owner}
            onOpenThread={(id) => {
              void refresh().then(() => {
                select(id);
                setTab("chat");
              });
            }}
          />
        ) : tab === "datasets" ? (
          <DatasetsPanel key={identityVersion} />
        ) : tab === "query" ? (
          <QueryPanel key={identityVersion} />
        ) : tab === "usage" ? (
          <UsagePanel key={identityVersion} />
        ) : null}
      </main>
    </div>
  );
}
