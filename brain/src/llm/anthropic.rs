//! Anthropic Messages API (`POST {base_url}/messages`, `stream: true`).
//!
//! Differences the adapter hides: the system prompt is a top-level field; tool results are
//! `tool_result` blocks in a user turn and consecutive same-role turns are merged; there is no
//! JSON mode, so `json_mode` adds an instruction to the system prompt (documented in README).

use std::collections::HashMap;

use reqwest::header::HeaderName;
use serde_json::{Value, json};

use super::http::{HttpProvider, WireFormat};
use super::sse::{FrameParser, SseFrame};
use super::{ChatMessage, ChatRequest, FinishReason, StreamEvent, TokenUsage};

const API_VERSION: &str = "2023-06-01";
const JSON_MODE_INSTRUCTION: &str =
    "Answer with a single JSON object only: no prose, no code fences.";

/// Anthropic's API.
pub type Anthropic = HttpProvider<Messages>;

/// The Messages protocol.
#[derive(Debug)]
pub struct Messages;

impl WireFormat for Messages {
    const PATH: &'static str = "/messages";
    const KEY_HEADER: (HeaderName, &'static str) = (HeaderName::from_static("x-api-key"), "");
    const HEADERS: &'static [(&'static str, &'static str)] = &[("anthropic-version", API_VERSION)];
    type Parser = EventParser;

    fn request_body(request: &ChatRequest) -> Value {
        let mut system: Vec<String> = Vec::new();
        let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
        let mut push = |role: &'static str, block: Value| match turns.last_mut() {
            Some((last, blocks)) if *last == role => blocks.push(block),
            _ => turns.push((role, vec![block])),
        };
        for message in &request.messages {
            match message {
                ChatMessage::System(text) => system.push(text.clone()),
                ChatMessage::User(text) => push("user", json!({"type": "text", "text": text})),
                ChatMessage::Assistant { text, tool_calls } => {
                    if !text.is_empty() {
                        push("assistant", json!({"type": "text", "text": text}));
                    }
                    for call in tool_calls {
                        let input: Value =
                            serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                        push(
                            "assistant",
                            json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}),
                        );
                    }
                }
                ChatMessage::ToolResult { call_id, output } => push(
                    "user",
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": output}),
                ),
            }
        }
        if request.json_mode {
            system.push(JSON_MODE_INSTRUCTION.to_owned());
        }
        let messages: Vec<Value> = turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_output_tokens,
            "messages": messages,
            "stream": true,
        });
        if !system.is_empty() {
            body["system"] = Value::String(system.join("\n\n"));
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| {
                    json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters})
                })
                .collect();
            if request.require_tool {
                body["tool_choice"] = json!({"type": "any"});
            }
        }
        body
    }
}

/// Parses Messages API stream events. Pure, for unit tests.
#[derive(Debug, Default)]
pub struct EventParser {
    /// Content block index → tool call index (in order of appearance).
    tool_blocks: HashMap<u64, usize>,
    usage: TokenUsage,
    finished: bool,
}

impl FrameParser for EventParser {
    fn parse_frame(&mut self, frame: &SseFrame) -> Result<Vec<StreamEvent>, String> {
        let event: Value = serde_json::from_str(&frame.data)
            .map_err(|_| "a stream event is not JSON".to_owned())?;
        self.parse(&event)
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

impl EventParser {
    pub(crate) fn parse(&mut self, event: &Value) -> Result<Vec<StreamEvent>, String> {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let count = |value: &Value, key: &str| value.get(key).and_then(Value::as_u64);
        let mut events = Vec::new();
        match kind {
            "message_start" => {
                if let Some(usage) = event.pointer("/message/usage") {
                    self.usage.input_tokens = count(usage, "input_tokens").unwrap_or(0);
                    self.usage.output_tokens = count(usage, "output_tokens").unwrap_or(0);
                }
            }
            "content_block_start" => {
                let block = event.get("content_block").unwrap_or(&Value::Null);
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let block_index = count(event, "index").unwrap_or(0);
                    let index = self.tool_blocks.len();
                    self.tool_blocks.insert(block_index, index);
                    events.push(StreamEvent::ToolCallStart {
                        index,
                        id: block
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        name: block
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    });
                }
            }
            "content_block_delta" => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(text) = delta.get("text").and_then(Value::as_str)
                            && !text.is_empty()
                        {
                            events.push(StreamEvent::TextDelta(text.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        let block_index = count(event, "index").unwrap_or(0);
                        if let (Some(index), Some(json)) = (
                            self.tool_blocks.get(&block_index),
                            delta.get("partial_json").and_then(Value::as_str),
                        ) && !json.is_empty()
                        {
                            events.push(StreamEvent::ToolCallDelta {
                                index: *index,
                                arguments_delta: json.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(output) = event
                    .pointer("/usage/output_tokens")
                    .and_then(Value::as_u64)
                {
                    self.usage.output_tokens = output;
                }
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    events.push(StreamEvent::Finish(match reason {
                        "end_turn" | "stop_sequence" => FinishReason::Stop,
                        "max_tokens" => FinishReason::Length,
                        "tool_use" => FinishReason::ToolCalls,
                        other => FinishReason::Other(other.to_owned()),
                    }));
                }
            }
            "message_stop" => {
                self.finished = true;
                events.push(StreamEvent::Usage(self.usage));
            }
            "error" => {
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(format!(
                    "the provider reported an error mid-stream: {message}"
                ));
            }
            // ping, content_block_stop and future event types carry nothing we need.
            _ => {}
        }
        Ok(events)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::llm::{ToolCall, ToolSpec};

    #[test]
    fn parses_a_streamed_tool_use_reply() {
        let mut parser = EventParser::default();
        let stream = [
            json!({"type":"message_start","message":{"id":"m","usage":{"input_tokens":25,"output_tokens":1}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            json!({"type":"ping"}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me add."}}),
            json!({"type":"content_block_stop","index":0}),
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"add","input":{}}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\": 2"}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", \"b\": 3}"}}),
            json!({"type":"content_block_stop","index":1}),
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":40}}),
            json!({"type":"message_stop"}),
        ];
        let events: Vec<StreamEvent> = stream
            .iter()
            .flat_map(|event| parser.parse(event).unwrap())
            .collect();
        assert_eq!(
            events,
            vec![
                StreamEvent::TextDelta("Let me add.".into()),
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "toolu_1".into(),
                    name: "add".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments_delta: "{\"a\": 2".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments_delta: ", \"b\": 3}".into()
                },
                StreamEvent::Finish(FinishReason::ToolCalls),
                StreamEvent::Usage(TokenUsage {
                    input_tokens: 25,
                    output_tokens: 40
                }),
            ]
        );
        assert!(parser.finished());
        assert!(parser.parse(&json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})).is_err());
    }

    #[test]
    fn request_body_moves_system_merges_turns_and_maps_tools() {
        let request = ChatRequest {
            model: "claude".into(),
            messages: vec![
                ChatMessage::System("be brief".into()),
                ChatMessage::User("add 2 and 3".into()),
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![
                        ToolCall {
                            id: "t1".into(),
                            name: "add".into(),
                            arguments: "{\"a\":2,\"b\":3}".into(),
                        },
                        ToolCall {
                            id: "t2".into(),
                            name: "add".into(),
                            arguments: "{\"a\":1,\"b\":1}".into(),
                        },
                    ],
                },
                ChatMessage::ToolResult {
                    call_id: "t1".into(),
                    output: "5".into(),
                },
                ChatMessage::ToolResult {
                    call_id: "t2".into(),
                    output: "2".into(),
                },
            ],
            tools: vec![ToolSpec {
                name: "add".into(),
                description: "d".into(),
                parameters: json!({"type":"object"}),
            }],
            max_output_tokens: 100,
            json_mode: true,
            require_tool: true,
        };
        let body = Messages::request_body(&request);
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        assert!(body["system"].as_str().unwrap().starts_with("be brief"));
        assert!(body["system"].as_str().unwrap().contains("JSON"));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{body}");
        assert_eq!(messages[1]["content"][1]["input"]["a"], 1);
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }
}
