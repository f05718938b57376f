"""Request guards that belong before any view: text no database column takes."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from payments.daraja.jsontext import has_unstorable_text

UNSTORABLE_MESSAGE = "must not contain NUL or unpaired surrogate characters"


class UnstorableQueryMiddleware:
    """400, naming the parameter, for a query string holding a NUL or a lone surrogate.

    PostgreSQL refuses such text in a query (a 500 from any filter that passes it on, the
    admin's list filters among them), and no lookup of ours needs it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = sorted(
            {
                name
                for name, values in request.GET.lists()
                if has_unstorable_text(name) or any(has_unstorable_text(v) for v in values)
            }
        )
        if refused:
            errors = {name: [UNSTORABLE_MESSAGE] for name in refused}
            return JsonResponse(
                {
                    "code": "invalid",
                    "detail": f"{refused[0]}: {UNSTORABLE_MESSAGE}",
                    "errors": errors,
                },
                status=400,
                json_dumps_params={"ensure_ascii": True},
            )
        return self.get_response(request)
