"""Request shapes of the OpenAI endpoints ponder serves, as pydantic models that refuse unknown
fields (a misspelt parameter is a 400 naming it, not silently ignored).

Fields beyond OpenAI's are marked `# ponder:`; clients send them through `extra_body`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class Strict(BaseModel):
    # No coercion: "0.5" or true for a number is a 400, as OpenAI answers, not a guess.
    model_config = ConfigDict(extra="forbid", strict=True)


class ContentPart(Strict):
    type: Literal["text", "input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    refusal: str | None = None
    reasoning: str | None = None  # ponder: an earlier assistant turn's reasoning, handed back

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(Strict):
    include_usage: bool = False


class ChatCompletionRequest(Strict):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    reasoning_effort: Effort | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=16)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    user: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    store: bool | None = None
    logprobs: bool | None = None
    include_reasoning: bool = False  # ponder: return the reasoning (only if the server allows it)
    strategy: str | None = None  # ponder: a test-time strategy (self_consistency, adaptive, ...)
    strategy_params: dict[str, str | int | float] | None = None  # ponder: its parameters

    @field_validator("stop")
    @classmethod
    def _stop(cls, value):
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > 4 or not all(stops):
            raise ValueError("stop takes up to 4 non-empty strings")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value):
        if value is not None and (len(value) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in value.items())):
            raise ValueError("metadata takes up to 16 pairs, keys up to 64 and values up to 512 characters")
        return value

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class ReasoningOptions(Strict):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None  # OpenAI's older name


class InputMessage(Strict):
    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class SummaryText(Strict):
    type: Literal["summary_text"] = "summary_text"
    text: str


class InputReasoning(Strict):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = []
    encrypted_content: str | None = None
    status: str | None = None


class TextFormat(Strict):
    type: Literal["text"] = "text"


class TextOptions(Strict):
    format: TextFormat | None = None


class ResponsesRequest(Strict):
    model: str
    input: str | list[InputMessage | InputReasoning]
    instructions: str | None = None
    reasoning: ReasoningOptions | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    include: list[Literal["reasoning.encrypted_content"]] | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    user: str | None = None
    metadata: dict[str, str] | None = None
    text: TextOptions | None = None
    tools: list[dict] | None = None
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["disabled"] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # ponder: as in chat completions
    strategy: str | None = None  # ponder: as in chat completions
    strategy_params: dict[str, str | int | float] | None = None  # ponder

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value):
        if value:
            raise ValueError("tools are not supported by this server yet")
        return value
