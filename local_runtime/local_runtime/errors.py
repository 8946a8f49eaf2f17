"""Domain errors; app.py maps them to Ollama's and OpenAI's error bodies."""


class RuntimeServiceError(Exception):
    """Base for errors a client caused or can act on; the message is safe to show."""

    status_code = 500


class ModelNotFound(RuntimeServiceError):
    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' not found")
        self.name = name


class InvalidRequest(RuntimeServiceError):
    status_code = 400


class Forbidden(RuntimeServiceError):
    status_code = 403


class ModelLoadFailed(RuntimeServiceError):
    status_code = 500


class RunnerFailed(RuntimeServiceError):
    """The model's runner died or stopped answering mid-request; the next request starts a new one."""

    status_code = 503


class NotEnoughMemory(RuntimeServiceError):
    """Loading the model would not fit in the memory left, even with idle models unloaded."""

    status_code = 503


class RequestTooLarge(RuntimeServiceError):
    status_code = 413


class QueueFull(RuntimeServiceError):
    """More requests wait for a model than RUNTIME_MAX_QUEUE; the client may retry after `retry_after` s."""

    status_code = 503

    def __init__(self, model: str, retry_after: int) -> None:
        super().__init__(f"server busy: too many requests queued for model '{model}', try again later")
        self.retry_after = retry_after
