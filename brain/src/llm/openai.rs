//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`, SSE streaming with
//! `stream_options.include_usage`). Works with OpenAI, vLLM, Ollama and llama.cpp servers.

use std::collections::HashSet;

use reqwest::header::{AUTHORIZATION, HeaderName};
use serde_json::{Value, json};

use super::http::{HttpProvider, WireFormat};
use super::sse::{FrameParser, SseFrame};
use super::{ChatMessage, ChatRequest, FinishReason, StreamEvent, TokenUsage};

/// An OpenAI-compatible server.
pub type OpenAiCompatible = HttpProvider<ChatCompletions>;

/// The chat completions protocol.
#[derive(Debug)]
pub struct ChatCompletions;

impl WireFormat for ChatCompletions {
    const PATH: &'static str = "/chat/completions";
    const KEY_HEADER: (HeaderName, &'static str) = (AUTHORIZATION, "Bearer ");
    const HEADERS: &'static [(&'static str, &'static str)] = &[];
    type Parser = ChunkParser;

    fn request_body(request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": request.max_output_tokens,
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.parameters,
                    }})
                })
                .collect();
            if request.require_tool {
                body["tool_choice"] = json!("required");
            }
        }
        if request.json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        body
    }
}

fn message_json(message: &ChatMessage) -> Value {
    match message {
        ChatMessage::System(text) => json!({"role": "system", "content": text}),
        ChatMessage::User(text) => json!({"role": "user", "content": text}),
        ChatMessage::Assistant { text, tool_calls } if tool_calls.is_empty() => {
            json!({"role": "assistant", "content": text})
        }
        ChatMessage::Assistant { text, tool_calls } => json!({
            "role": "assistant",
            "content": if text.is_empty() { Value::Null } else { Value::String(text.clone()) },
            "tool_calls": tool_calls.iter().map(|call| json!({
                "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            })).collect::<Vec<_>>(),
        }),
        ChatMessage::ToolResult { call_id, output } => {
            json!({"role": "tool", "tool_call_id": call_id, "content": output})
        }
    }
}

/// Parses `chat.completion.chunk` objects into events. Pure, for unit tests.
#[derive(Debug, Default)]
pub struct ChunkParser {
    started_tool_calls: HashSet<usize>,
    /// A finish reason or `[DONE]` was seen.
    pub(crate) finished: bool,
}

impl FrameParser for ChunkParser {
    fn parse_frame(&mut self, frame: &SseFrame) -> Result<Vec<StreamEvent>, String> {
        if frame.data == "[DONE]" {
            self.finished = true;
            return Ok(Vec::new());
        }
        let chunk: Value = serde_json::from_str(&frame.data)
            .map_err(|_| "a stream chunk is not JSON".to_owned())?;
        self.parse(&chunk)
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

impl ChunkParser {
    pub(crate) fn parse(&mut self, chunk: &Value) -> Result<Vec<StreamEvent>, String> {
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(format!(
                "the provider reported an error mid-stream: {message}"
            ));
        }
        let mut events = Vec::new();
        if let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                events.push(StreamEvent::TextDelta(text.to_owned()));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    let index = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .map_or(position, |i| usize::try_from(i).unwrap_or(position));
                    let function = call.get("function").unwrap_or(&Value::Null);
                    if !self.started_tool_calls.contains(&index) {
                        let name = function
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let id = call
                            .get("id")
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("call_{index}"), str::to_owned);
                        self.started_tool_calls.insert(index);
                        events.push(StreamEvent::ToolCallStart {
                            index,
                            id,
                            name: name.to_owned(),
                        });
                    }
                    if let Some(arguments) = function.get("arguments").and_then(Value::as_str)
                        && !arguments.is_empty()
                    {
                        events.push(StreamEvent::ToolCallDelta {
                            index,
                            arguments_delta: arguments.to_owned(),
                        });
                    }
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finished = true;
                events.push(StreamEvent::Finish(match reason {
                    "stop" => FinishReason::Stop,
                    "length" => FinishReason::Length,
                    "tool_calls" | "function_call" => FinishReason::ToolCalls,
                    other => FinishReason::Other(other.to_owned()),
                }));
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
            events.push(StreamEvent::Usage(TokenUsage {
                input_tokens: count("prompt_tokens"),
                output_tokens: count("completion_tokens"),
            }));
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
    fn parses_text_tool_calls_finish_and_usage() {
        let mut parser = ChunkParser::default();
        let chunks = [
            json!({"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}),
            json!({"choices":[{"index":0,"delta":{"content":"Hi"}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"add","arguments":"{"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"a\":1}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
            json!({"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3}}),
        ];
        let events: Vec<StreamEvent> = chunks
            .iter()
            .flat_map(|chunk| parser.parse(chunk).unwrap())
            .collect();
        assert_eq!(
            events,
            vec![
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "c1".into(),
                    name: "add".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments_delta: "{".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments_delta: "\"a\":1}".into()
                },
                StreamEvent::Finish(FinishReason::ToolCalls),
                StreamEvent::Usage(TokenUsage {
                    input_tokens: 10,
                    output_tokens: 3
                }),
            ]
        );
        assert!(parser.finished);
    }

    #[test]
    fn an_error_chunk_is_an_error() {
        let mut parser = ChunkParser::default();
        assert!(
            parser
                .parse(&json!({"error":{"message":"overloaded"}}))
                .is_err()
        );
    }

    #[test]
    fn request_body_carries_tools_json_mode_and_tool_results() {
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![
                ChatMessage::System("s".into()),
                ChatMessage::User("u".into()),
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c".into(),
                        name: "add".into(),
                        arguments: "{}".into(),
                    }],
                },
                ChatMessage::ToolResult {
                    call_id: "c".into(),
                    output: "3".into(),
                },
            ],
            tools: vec![ToolSpec {
                name: "add".into(),
                description: "d".into(),
                parameters: json!({"type":"object"}),
            }],
            max_output_tokens: 7,
            json_mode: true,
            require_tool: true,
        };
        let body = ChatCompletions::request_body(&request);
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(body["max_tokens"], 7);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["tools"][0]["function"]["name"], "add");
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!(body["messages"][3]["role"], "tool");
        assert_eq!(body["messages"][3]["tool_call_id"], "c");
    }
}
