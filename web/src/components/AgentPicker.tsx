import { useId } from "react";
import type { AgentList } from "@edgebrain/types";

/**
 * The agent a new conversation gets (`CreateThread.agent`). Shown only when there is a choice;
 * `null` stands for the configured default agent.
 */
export function AgentPicker(props: { agents: AgentList | null; value: string | null; onChange: (agent: string | null) => void }) {
  const { agents } = props;
  const descriptionId = useId();
  if (!agents || agents.agents.length < 2) return null;
  const described = agents.agents.find((agent) => agent.name === (props.value ?? agents.default_agent));
  return (
    <div className="agent-picker">
      <label>
        Agent{" "}
        <select
          aria-label="Agent for a new conversation"
          value={props.value ?? ""}
          onChange={(event) => props.onChange(event.target.value || null)}
          aria-describedby={descriptionId}
        >
          <option value="">{agents.default_agent} (default)</option>
          {agents.agents
            .filter((agent) => agent.name !== agents.default_agent)
            .map((agent) => (
              <option key={agent.name} value={agent.name}>
                {agent.name}
              </option>
            ))}
        </select>
      </label>
      {described ? (
        <p className="muted agent-description" id={descriptionId}>
          {described.description}
        </p>
      ) : null}
    </div>
  );
}
