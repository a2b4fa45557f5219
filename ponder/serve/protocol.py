"""Request shapes of the OpenAI endpoints ponder serves, as pydantic models that refuse unknown
fields (a misspelt parameter is a 400 naming it, not silently ignored).

Every parameter of OpenAI's reference is known here, in one of three ways (docs/api-parameters.md
has the table): implemented; accepted and ignored, with its type and enum still checked, when
ignoring it changes nothing a client can rely on (a cache key, a service tier, a safety id); or
refused with a 400 naming it when it asks for output this server cannot produce (tools, audio,
structured outputs, logit bias). A refused parameter is still accepted when its value asks for
nothing (null, false, 0, an empty list), since SDKs and frameworks send those by default.

Fields beyond OpenAI's are marked `# ponder:`; clients send them through `extra_body`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Verbosity = Literal["low", "medium", "high"]
CacheRetention = Literal["in_memory", "24h"]
ChatServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast"]
ResponsesServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"]


class Strict(BaseModel):
    # No coercion: "0.5" or true for a number is a 400, as OpenAI answers, not a guess.
    model_config = ConfigDict(extra="forbid", strict=True)


def _asks_for_nothing(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def refuse_unless_unused(reasons: dict[str, str], allowed: dict[str, tuple] | None = None):
    """A validator for the parameters in `reasons`: a value that asks for something (or is not in
    `allowed` for its field) is a 400 that names the parameter and says why it is refused."""

    def check(cls, value, info: ValidationInfo):
        if _asks_for_nothing(value) or value in (allowed or {}).get(info.field_name, ()):
            return value
        raise PydanticCustomError("unsupported_value", reasons[info.field_name])

    return field_validator(*reasons)(check)


def null_means_default(*names: str):
    """OpenAI takes null for an optional parameter as its default; so does ponder, and the
    handlers never see None for these."""

    def check(cls, value, info: ValidationInfo):
        return cls.model_fields[info.field_name].default if value is None else value

    return field_validator(*names)(check)


def _checked_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is not None and (len(value) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in value.items())):
        raise ValueError("metadata takes up to 16 pairs, keys up to 64 and values up to 512 characters")
    return value


# What a refused parameter asks for, and why ponder can't give it; shared by both endpoints.
TOOLS = "tools are not supported by this server yet"
REFUSED = {
    "tools": TOOLS,
    "tool_choice": f"{TOOLS}; only 'none' or 'auto' (no tool calls) are accepted",
    "functions": f"{TOOLS} (functions is their older name)",
    "function_call": f"{TOOLS}; only 'none' or 'auto' are accepted",
    "audio": "audio output is not supported; this server answers in text",
    "modalities": "only the 'text' modality is supported; this server answers in text",
    "logit_bias": "logit_bias is not supported by this server's sampler",
    "frequency_penalty": "frequency_penalty is not supported by this server's sampler; send 0 or omit it",
    "presence_penalty": "presence_penalty is not supported by this server's sampler; send 0 or omit it",
    "moderation": "moderated completions are not supported by this server; moderate on the client",
    "web_search_options": "web search is not supported by this server",
    "background": "background responses are not supported; send the request without background and wait for it",
    "conversation": "conversations are not supported; continue with previous_response_id or hand back the output items",
    "context_management": "server-side context compaction is not supported by this server",
    "prompt": "saved prompt templates are not supported; send the instructions and input themselves",
    "truncation": "truncation 'auto' is not supported: a prompt beyond the context is refused with "
                  "context_length_exceeded instead of dropping earlier turns",
}
STRUCTURED = "structured outputs (json_object, json_schema) are not supported by this server; only 'text' is"
ALLOWED = {"tool_choice": ("none", "auto"), "function_call": ("none", "auto"), "modalities": (["text"],),
           "truncation": ("disabled",)}


# The most messages, input items or content parts one request may hold. Validating each item
# costs the event loop time: 30,000 one-character messages (1 MB) took 90 ms, so the lists are
# capped well above any real conversation and a longer one is refused at this bound.
MAX_ITEMS = 2048
# A token bound no model reaches; larger ones would overflow what SQLite stores for a reservation.
MAX_TOKENS = 2**31 - 1


class ContentPart(Strict):
    type: Literal["text", "input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None


Parts = Annotated[list[ContentPart], Field(max_length=MAX_ITEMS)]


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | Parts | None = Field(default=None, validate_default=True)  # checked when left out too
    name: str | None = None
    refusal: str | None = None
    reasoning: str | None = None  # ponder: an earlier assistant turn's reasoning, handed back

    @field_validator("content")
    @classmethod
    def _content_unless_assistant(cls, value, info: ValidationInfo):
        # As OpenAI: only an assistant turn may come without content (it carried tool calls or a refusal).
        if value is None and info.data.get("role") != "assistant":
            raise PydanticCustomError("missing", "a {role} message needs content", {"role": info.data.get("role")})
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # ignored: ponder's chunks carry no obfuscation padding


class ResponseFormat(Strict):
    """Chat's `response_format`: plain text is what ponder writes; the JSON modes are refused."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    _text_only = refuse_unless_unused({"type": STRUCTURED}, {"type": ("text",)})


class PredictionContent(Strict):
    # A latency hint only: the answer is the same with or without it, so it is accepted and ignored.
    type: Literal["content"]
    content: str | Parts


class PromptCacheOptions(Strict):
    # Caching is OpenAI's optimisation; the output is the same without it.
    mode: Literal["implicit", "explicit"] | None = None
    ttl: Literal["30m"] | None = None


class ChatCompletionRequest(Strict):
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_ITEMS)
    reasoning_effort: Effort | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    n: int | None = Field(default=1, ge=1, le=16)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    temperature: float | None = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=1.0, gt=0, le=1)
    user: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    store: bool | None = None
    logprobs: bool | None = None  # true is refused by the handler: reasoning models give no logprobs
    response_format: ResponseFormat | None = None
    # Accepted and ignored: they tune OpenAI's caching, routing and abuse detection, not the answer.
    service_tier: ChatServiceTier | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: CacheRetention | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    safety_identifier: str | None = Field(default=None, max_length=128)
    verbosity: Verbosity | None = None
    parallel_tool_calls: bool | None = None
    prediction: PredictionContent | None = None
    # Refused unless they ask for nothing (REFUSED says why).
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: Literal["none", "auto"] | dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    logit_bias: dict[str, int] | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    moderation: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    include_reasoning: bool | None = False  # ponder: return the reasoning (only if the server allows it)
    strategy: str | None = None  # ponder: a test-time strategy (self_consistency, adaptive, ...)
    strategy_params: dict[str, str | int | float] | None = None  # ponder: its parameters

    _defaults = null_means_default("n", "temperature", "top_p", "stream")
    _refused = refuse_unless_unused({k: REFUSED[k] for k in (
        "tools", "tool_choice", "functions", "function_call", "audio", "modalities", "logit_bias",
        "frequency_penalty", "presence_penalty", "moderation", "web_search_options")}, ALLOWED)

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
        return _checked_metadata(value)

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class ReasoningOptions(Strict):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None  # OpenAI's older name
    # Ignored: ponder always renders handed-back reasoning, and has one execution mode.
    context: Literal["auto", "current_turn", "all_turns"] | None = None
    mode: str | None = None


class InputMessage(Strict):
    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: str | Parts
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
    """`text.format`: the structured-output shapes are known, so they are refused by name rather
    than as a pile of unknown fields."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    _text_only = refuse_unless_unused({"type": STRUCTURED}, {"type": ("text",)})


class TextOptions(Strict):
    format: TextFormat | None = None
    verbosity: Verbosity | None = None  # ignored: a hint on answer length the small model can't follow


class ResponsesStreamOptions(Strict):
    include_obfuscation: bool | None = None  # ignored: ponder's events carry no obfuscation padding


class ResponsesPromptCacheOptions(PromptCacheOptions):
    ttl: Literal["30m", "12h"] | None = None
    comparison_response_id: str | None = None
    prewarm: bool | None = None

    @field_validator("prewarm")
    @classmethod
    def _no_prewarm(cls, value):
        if value:
            raise PydanticCustomError("unsupported_value", "prewarm (a request that generates nothing) is not "
                                      "supported by this server")
        return value


class AccessPrograms(Strict):
    cyber: Literal["standard", "daybreak_blue", "daybreak_red"] | None = None


class BackgroundOptions(Strict):
    completion_window: Literal["soonest", "2h", "8h"] | None = None
    continuation_id: str | None = None


class ImageOptions(Strict):
    context_compression: Literal["auto", "enabled", "disabled"] | None = None


class ResponsesRequest(Strict):
    model: str
    input: str | Annotated[list[InputMessage | InputReasoning], Field(max_length=MAX_ITEMS)]
    instructions: str | None = None
    reasoning: ReasoningOptions | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    include: list[Literal["reasoning.encrypted_content"]] | None = None
    previous_response_id: str | None = None
    store: bool | None = True
    stream: bool | None = False
    temperature: float | None = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=1.0, gt=0, le=1)
    user: str | None = None
    metadata: dict[str, str] | None = None
    text: TextOptions | None = None
    # Accepted and ignored, as in chat completions; the last three only matter with tools or
    # background runs, which are refused.
    service_tier: ResponsesServiceTier | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: CacheRetention | None = None
    prompt_cache_options: ResponsesPromptCacheOptions | None = None
    safety_identifier: str | None = Field(default=None, max_length=128)
    stream_options: ResponsesStreamOptions | None = None
    access_programs: AccessPrograms | None = None
    image: ImageOptions | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=0)
    background_options: BackgroundOptions | None = None
    # Refused unless they ask for nothing (REFUSED says why).
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    background: bool | None = None
    conversation: str | dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    prompt: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # ponder: as in chat completions
    strategy: str | None = None  # ponder: as in chat completions
    strategy_params: dict[str, str | int | float] | None = None  # ponder

    _defaults = null_means_default("store", "temperature", "top_p", "stream")
    _refused = refuse_unless_unused({k: REFUSED[k] for k in (
        "tools", "tool_choice", "truncation", "background", "conversation", "context_management", "prompt",
        "moderation")}, ALLOWED)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value):
        return _checked_metadata(value)
