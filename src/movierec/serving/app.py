"""The HTTP service: the :class:`~movierec.pipeline.Recommender` behind FastAPI.

Models are loaded once, by the app's lifespan; ratings people give are stored
in a database (:mod:`movierec.serving.store`) and passed to every answer about
that user as extra ratings, so they count at once, without retraining.
Everything a client can get wrong becomes a 4xx with ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from movierec._version import __version__
from movierec.errors import ModelError, MovierecError, UnknownIdError
from movierec.feedback import check_feedback_type, split_feedback
from movierec.pipeline import MovieResult, Recommender
from movierec.serving import schemas
from movierec.serving.middleware import (
    DEFAULT_BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    BodyLimit,
    RequireKey,
    StrictUtf8,
)
from movierec.serving.observe import Metrics, Observe
from movierec.serving.process import tune_process_for_serving
from movierec.serving.retrain import RetrainSchedule, retrain_command
from movierec.serving.security import (
    DOCS_ASSETS_URL,
    DOCS_URL,
    AllowedHosts,
    KeyChecker,
    RateLimit,
    RateLimiter,
    SecurityHeaders,
    is_public,
)
from movierec.serving.store import MAX_ID_LENGTH, RatingStore, StoreBusyError, default_url

logger = logging.getLogger("movierec.serving")
STATIC_DIR = Path(__file__).parent / "static"

UserId = Annotated[
    str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=schemas.ID_PATTERN)
]
MovieId = Annotated[
    str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=schemas.ID_PATTERN)
]
K = Annotated[int, Query(ge=1, le=schemas.MAX_K, description="how many movies")]
Offset = Annotated[
    int,
    Query(
        ge=0,
        le=schemas.MAX_OFFSET,
        description="how many movies of the list to skip: 0 for the first page, then the "
        "answer's next_offset (or offset + k); pages never repeat or skip a movie",
    ),
]
Exclude = Annotated[
    list[schemas.Id],
    Query(
        max_length=schemas.MAX_EXCLUDE_QUERY,
        description="movie ids never to return (repeat the parameter: ?exclude=1&exclude=2), "
        f"at most {schemas.MAX_EXCLUDE_QUERY}; the list is the one without them (page on "
        "with offset rather than excluding every movie shown)",
    ),
]
EXPLAIN = (
    "give each movie the user's ratings that raised it most (`because`: up to three, "
    "with their stars); costs a pass of both models over the history left one out"
)


def _invalid(loc: tuple[str | int, ...], message: str, value: Any) -> RequestValidationError:
    """A 422 with the same body as FastAPI's own validation errors (as documented)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give (all ``{"detail": str}``)."""
    return {code: {"model": schemas.Error} for code in codes}


def warm_up(recommender: Recommender) -> float:
    """Answer each kind of request once, so that every jitted program a request
    needs is compiled and every lazy cache filled before the first real request
    (which then is as fast as the rest, and requests never race to fill a cache).
    Returns the seconds it took."""
    started = time.perf_counter()
    train = recommender.retrieval.train
    users, movies = train.users.ids, train.movies.ids
    if not movies:
        return 0.0
    extra = [(movies[0], 4.0)]
    if users:
        recommender.recommend(users[0], 10, True)
        recommender.recommend(users[0], 10, True, extra)
        recommender.recommend(users[0], 10, True, explain=True)
    recommender.recommend(None, 10, True, extra)
    # Explanations run the models on one shortened query per rating, padded to a power of
    # two: every padded size up to the longest training history (or visitor's list).
    lengths = np.diff(train.by_user.offsets)
    longest = max(int(lengths.max()) if len(lengths) else 0, schemas.MAX_RATINGS)
    longest, size = min(longest, len(movies)), 1
    while True:
        rated = [(movie, 4.0) for movie in movies[:size]]
        recommender.recommend(None, 10, True, rated, explain=True)
        if size >= longest:
            break
        size = min(size * 2 + 1, longest)
    recommender.similar(movies[0], 10)
    recommender.popular(10)
    recommender.search(recommender.movie(movies[0]).title, 1)
    if recommender.ranking is not None:
        size = 1
        while True:  # every padded size a /rank request can have
            recommender.rank(None, [movies[i % len(movies)] for i in range(size)], extra)
            if size >= schemas.MAX_MOVIE_IDS:
                break
            size = min(size * 2, schemas.MAX_MOVIE_IDS)
    return time.perf_counter() - started


def model_version(recommender: Recommender) -> str:
    """A short digest of both models' artifact checksums."""
    digest = hashlib.sha256()
    for saved in (recommender.retrieval, recommender.ranking):
        artifacts = saved.manifest.get("artifacts", {}) if saved is not None else {}
        digest.update(json.dumps(artifacts, sort_keys=True).encode())
    return digest.hexdigest()[:16]


class Service:
    """What the endpoints share: one recommender, one rating store.

    Nothing here is locked: the read path (jitted inference, numpy, a read-only
    index) is safe to run from many threads once :func:`warm_up` has run.
    """

    def __init__(
        self,
        recommender: Recommender,
        store: RatingStore,
        models_dir: Path | None = None,
        reloads: int = 0,
    ):
        self.recommender = recommender
        self.store = store
        self.models_dir = models_dir
        self.reloads = reloads
        self.loaded_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.model_version = model_version(recommender)
        retrieval = recommender.retrieval
        #: When the live retrieval model was trained (UTC), on how many ratings, and how
        #: many of those were stored through the service.
        self.trained_at: str | None = retrieval.manifest.get("created")
        self.trained_on_ratings = len(retrieval.train.rating)
        stored = (retrieval.manifest.get("split") or {}).get("stored_ratings") or {}
        self.trained_on_stored = int(stored.get("count") or 0)
        self.movies = recommender.retrieval.train.movies
        scale = recommender.retrieval.manifest.get("rating_scale") or (1.0, 5.0)
        self.rating_scale = (float(scale[0]), float(scale[1]))

    def check_ratings(
        self, ratings: Sequence[schemas.RatingIn], single: bool = False
    ) -> list[tuple[str, float]]:
        """Ratings on the model's scale for known movies; a later duplicate wins.

        ``single``: the body is one rating (error locations say so), not a list.
        """
        low, high = self.rating_scale
        merged: dict[str, float] = {}
        for position, item in enumerate(ratings):
            if not low <= item.rating <= high:
                raise _invalid(
                    ("body", "rating") if single else ("body", "ratings", position, "rating"),
                    f"rating {item.rating!r} is off the scale {low:g} to {high:g}",
                    item.rating,
                )
            if item.movie_id not in self.movies:
                raise UnknownIdError("movie", item.movie_id)
            merged.pop(item.movie_id, None)
            merged[item.movie_id] = float(item.rating)
        return list(merged.items())

    def stored(self, user_id: str) -> list[tuple[str, float]]:
        """The user's stored ratings of movies this model knows (a retrained
        model may have dropped some)."""
        return [(m, r) for m, r, _ in self.store.user_ratings(user_id) if m in self.movies]

    def feedback(self, user_id: str) -> list[tuple[str, str]]:
        """The user's stored (movie_id, type) feedback on movies this model knows."""
        return [(m, t) for m, t, _ in self.store.user_feedback(user_id) if m in self.movies]

    def check_movies(self, movie_ids: Sequence[str]) -> None:
        """404 naming the first id this model does not know."""
        for movie_id in movie_ids:
            if movie_id not in self.movies:
                raise UnknownIdError("movie", movie_id)


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats spelled as text (JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _validation_detail(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's 422 detail, each message naming the value given, JSON-safe."""
    detail = []
    for error in jsonable_encoder(errors, custom_encoder={float: _finite}):
        error = _finite(dict(error))
        given = error.get("input")
        if given is not None and not isinstance(given, (dict, list)) and "input" in error:
            shown = repr(given) if len(repr(given)) <= 80 else repr(given)[:77] + "..."
            if shown not in error["msg"]:
                error["msg"] = f"{error['msg']} (got {shown})"
        error.pop("url", None)
        detail.append(error)
    return detail


def create_app(
    models_dir: str | Path | None = None,
    db_url: str | None = None,
    *,
    recommender: Recommender | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
    api_keys: Sequence[str] = (),
    rate_limit: float | None = None,
    rate_burst: float | None = None,
    allowed_hosts: Sequence[str] | None = None,
    tune_process: bool = False,
    retrain_every: float | None = None,
    retrain: Sequence[str] | None = None,
) -> FastAPI:
    """The app for ``models_dir`` (or an already loaded ``recommender``).

    The database defaults to ``ratings.sqlite3`` beside the models.

    Args:
        api_keys: when given, every path but the probes, the page and the API
            description needs ``Authorization: Bearer KEY`` with one of them.
        rate_limit: requests a second per client (its key, else its address); None: no limit.
        rate_burst: requests a client may make at once (default: one second's worth, >= 10).
        allowed_hosts: Host header values accepted (port ignored); None or ``*``: any.
        tune_process: the process serves only this app (``movierec serve``): after a
            reload, re-freeze the garbage collector and re-pin thread pools as at start.
        retrain_every: seconds between retrains (``serve --retrain-every``): each runs
            ``retrain`` (default: ``movierec retrain`` on ``models_dir``) in a child
            process and reloads when it succeeds (:mod:`movierec.serving.retrain`).
        retrain: the retrain child's command line.
    """
    if models_dir is None and recommender is None:
        raise ModelError("create_app needs models_dir or a recommender")
    if db_url is None:
        if models_dir is not None:
            models_dir_for_db = Path(models_dir)
        else:
            assert recommender is not None  # one of the two, checked above
            models_dir_for_db = Path(recommender.retrieval.directory or ".").parent
        db_url = default_url(models_dir_for_db)

    if models_dir is None and recommender is not None and recommender.retrieval.directory:
        models_dir = Path(recommender.retrieval.directory).parent
    if retrain_every is not None and models_dir is None:
        raise ModelError("retraining needs the models directory the service loads")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if recommender is not None:
            loaded = recommender
        else:
            assert models_dir is not None  # one of the two, checked above
            loaded = Recommender.load(models_dir)
            if tune_process:
                tune_process_for_serving()
        store = RatingStore(db_url)
        await asyncio.to_thread(warm_up, loaded)
        # a database connection and a worker thread, ready for the first request
        await run_in_threadpool(store.user_ratings, "")
        app.state.service = Service(loaded, store, Path(models_dir) if models_dir else None)
        schedule = app.state.retrain
        task = asyncio.create_task(schedule.run_forever()) if schedule is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()  # stops a running retrain child too
                await asyncio.gather(task, return_exceptions=True)
            app.state.service = None
            store.close()

    # FastAPI's own /docs loads Swagger UI from a CDN: a blank page offline.
    # fastapi-offline serves the same page with the files it ships. No /redoc: ReDoc
    # loads its logo from a CDN whatever its options.
    app = FastAPIOffline(
        docs_url=DOCS_URL,
        redoc_url=None,
        static_url=DOCS_ASSETS_URL,
        favicon_url="/static/favicon.svg",
        # no "valid" badge fetched from validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None},
        title="movierec",
        version=__version__,
        description="Two-stage movie recommendations: retrieval, then ranking.",
        lifespan=lifespan,
        # Every route can answer these: models not loaded / database busy, and a
        # Content-Length that is not a number.
        responses=_errors(400, 503),
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.auth = bool(api_keys)
    app.state.reload_lock = asyncio.Lock()
    app.state.openapi_scale = None
    app.state.tune_process = tune_process
    app.state.service = None
    # Outermost last: headers on every answer, then Host, rate, key, text, body checks.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(StrictUtf8)
    if api_keys:
        app.add_middleware(RequireKey, checker=KeyChecker(api_keys))
    if rate_limit is not None:
        burst = rate_burst if rate_burst is not None else max(10.0, rate_limit)
        app.add_middleware(RateLimit, limiter=RateLimiter(rate_limit, burst))
    if allowed_hosts is not None:
        app.add_middleware(AllowedHosts, hosts=allowed_hosts)
    app.add_middleware(SecurityHeaders)
    app.state.metrics = Metrics(lambda: app.state.service)
    app.state.retrain = None
    if retrain_every is not None:
        assert models_dir is not None
        app.state.retrain = RetrainSchedule(
            retrain_every,
            retrain if retrain is not None else retrain_command(Path(models_dir)),
            db_url,
            lambda: reload_models(app),
            app.state.metrics.registry,
        )
    app.add_middleware(Observe, metrics=app.state.metrics)
    _add_error_handlers(app)
    _add_routes(app)
    _document_limits(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _document_limits(app: FastAPI) -> None:
    """Every route but the probes may answer 429; API routes 401, POSTs 408 and 413.
    The OpenAPI document names the bearer scheme on the routes that need a key."""
    from fastapi.openapi.utils import get_openapi
    from fastapi.routing import APIRoute

    limited = set()
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        extra = [] if route.path.startswith("/health") else [429]
        if not is_public(route.path):
            extra.append(401)
            limited.add(route.path)
        if "POST" in (route.methods or ()):
            extra += [408, 413]
        route.responses = {**_errors(*extra), **route.responses}

    def openapi() -> dict[str, Any]:
        service = app.state.service
        scale = service.rating_scale if service is not None else None
        if app.openapi_schema is None or app.state.openapi_scale != scale:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["bearer"] = {"type": "http", "scheme": "bearer"}
            for path, operations in schema["paths"].items():
                if path in limited:
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            if scale is not None:  # the loaded model's scale is part of the contract
                rating = schema["components"]["schemas"]["RatingIn"]["properties"]["rating"]
                rating["minimum"], rating["maximum"] = scale
            app.openapi_schema, app.state.openapi_scale = schema, scale
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        """FastAPI's own answer, except that a 405's ``Allow`` lists the methods of
        every route at this path (Starlette names only the first route's)."""
        headers = dict(error.headers or {})
        if error.status_code == 405:
            path = request.scope["path"]
            allowed = set()
            for route in request.app.routes:
                if isinstance(route, APIRoute) and route.path_regex.match(path):
                    allowed |= route.methods or set()
            headers["Allow"] = ", ".join(sorted(allowed))
        if error.status_code in (204, 304):
            return Response(status_code=error.status_code, headers=headers)
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(error.errors())}, status_code=422)

    @app.exception_handler(StoreBusyError)
    async def store_busy(request: Request, error: StoreBusyError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, error: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(ModelError)
    async def model_error(request: Request, error: ModelError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(MovierecError)
    async def movierec_error(request: Request, error: MovierecError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)


def _version(service: Service, schedule: RetrainSchedule | None = None) -> schemas.Version:
    ranking = service.recommender.ranking
    return schemas.Version(
        movierec=__version__,
        model_version=service.model_version,
        models_dir=str(service.models_dir) if service.models_dir else None,
        loaded_at=service.loaded_at,
        reloads=service.reloads,
        trained_at=service.trained_at,
        trained_on_ratings=service.trained_on_ratings,
        trained_on_stored_ratings=service.trained_on_stored,
        retrain=(
            schemas.RetrainStatus(**schedule.status()) if schedule is not None else None
        ),
        retrieval=service.recommender.retrieval.manifest,
        ranking=ranking.manifest if ranking is not None else None,
    )


async def reload_models(app: FastAPI) -> Service:
    """Load, verify and warm the models directory in a worker thread, then swap the
    new models in with one assignment: a request uses the service it started with,
    so none fails or mixes models during the swap. One reload at a time.

    Raises:
        HTTPException: 409 when the new models are refused (the old ones stay live),
            503 before the first load.
    """
    async with app.state.reload_lock:
        current: Service | None = app.state.service
        if current is None:
            raise HTTPException(503, "models are not loaded yet")
        if current.models_dir is None:
            raise HTTPException(409, "this service was not started from a models directory")

        directory = current.models_dir

        def load() -> Recommender:
            loaded = Recommender.load(directory)
            warm_up(loaded)
            return loaded

        try:
            loaded = await asyncio.to_thread(load)
        except MovierecError as error:
            logger.warning("reload refused: %s", error)
            raise HTTPException(
                409, f"reload refused, still serving {current.model_version}: {error}"
            ) from None
        app.state.service = Service(loaded, current.store, current.models_dir, current.reloads + 1)
        if app.state.tune_process:
            gc.unfreeze()  # let the replaced models be collected
            tune_process_for_serving()
        logger.info(
            "reloaded models from %s: %s -> %s",
            current.models_dir,
            current.model_version,
            app.state.service.model_version,
        )
        return app.state.service


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included (cached)."""
    names = getattr(route, "_movierec_query_names", None)
    if names is None:
        found: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(field.alias for field in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = frozenset(found)
        route._movierec_query_names = names  # type: ignore[attr-defined]
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not take (a typo such as ``?K=5``
    would otherwise be ignored silently)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    for name, value in request.query_params.multi_items():
        if name not in known:
            raise RequestValidationError(
                [
                    {
                        "type": "extra_forbidden",
                        "loc": ("query", name),
                        "msg": f"unknown query parameter {name!r}",
                        "input": value,
                    }
                ]
            )


def get_service(request: Request) -> Service:
    """Dependency of the model routes: the loaded service, or 503 while it loads."""
    service = request.app.state.service
    if service is None:
        raise HTTPException(503, "models are not loaded yet")
    return service


Svc = Annotated[Service, Depends(get_service)]


def _movies(results: Sequence[MovieResult]) -> list[schemas.Movie]:
    return [schemas.Movie(**r.to_dict()) for r in results]


def _add_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/health/live", response_model=schemas.Live, tags=["service"])
    def live() -> schemas.Live:
        """200 while the process answers at all (loaded or not)."""
        return schemas.Live(status="alive")

    @app.get("/health/ready", response_model=schemas.Health, tags=["service"])
    @app.get("/health", response_model=schemas.Health, tags=["service"])
    def health(request: Request) -> schemas.Health:
        """200 once the models are loaded and warmed up, 503 before."""
        service = get_service(request)
        train = service.recommender.retrieval.train
        return schemas.Health(
            status="ok",
            users=len(train.users),
            movies=len(service.recommender.catalogue),
            ranking=service.recommender.ranking is not None,
        )

    @app.get("/version", response_model=schemas.Version, tags=["service"])
    def version(request: Request, service: Svc) -> schemas.Version:
        """What is live: the models' version and manifests (data, split, settings, metrics),
        when they were trained and on how many ratings, and the retrain schedule."""
        return _version(service, request.app.state.retrain)

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={
            200: {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "description": "Prometheus text format",
            }
        },
    )
    def metrics(request: Request) -> Response:
        """Requests and latencies by route and status, the live model version, reloads
        and ratings stored, in Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(request.app.state.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/admin/reload",
        response_model=schemas.Version,
        tags=["service"],
        responses=_errors(409),
    )
    async def reload(request: Request) -> schemas.Version:
        """Load the models directory again (a newly trained model), verify it, warm it
        up and swap it in; requests keep being answered by the old models until then.
        409, and the old models stay live, when the new ones are refused."""
        return _version(await reload_models(request.app), request.app.state.retrain)

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=schemas.Recommendations,
        tags=["recommend"],
        responses=_errors(404),
    )
    def user_recommendations(
        service: Svc,
        user_id: UserId,
        k: K = 10,
        exclude_seen: bool = True,
        offset: Offset = 0,
        exclude: Exclude = [],  # noqa: B006 (FastAPI copies defaults)
        explain: Annotated[bool, Query(description=EXPLAIN)] = False,
    ) -> schemas.Recommendations:
        """Top ``k`` for a user from ``offset``: training history plus every rating and
        feedback row stored for them (watched and not-interested movies never come back);
        with ``explain``, each movie's ``because`` names the ratings behind it."""
        started = time.perf_counter()
        stored = service.stored(user_id)
        feedback = service.feedback(user_id)
        store_ms = (time.perf_counter() - started) * 1000
        known = service.recommender.knows_user(user_id)
        watched, not_interested = split_feedback(feedback)
        if not known and not stored and not watched:
            raise UnknownIdError("user", user_id)
        answer = service.recommender.recommend(
            user_id,
            k,
            exclude_seen,
            stored,
            offset=offset,
            exclude=exclude,
            watched=watched,
            not_interested=not_interested,
            explain=explain,
        )
        return schemas.Recommendations(
            user_id=user_id,
            known_to_model=known,
            used_ratings=len(stored),
            used_feedback=len(feedback),
            offset=offset,
            next_offset=offset + len(answer.items),
            items=_movies(answer.items),
            timings_ms={"store": store_ms, **answer.timings_ms},
        )

    @app.post(
        "/recommendations",
        response_model=schemas.Recommendations,
        tags=["recommend"],
        responses=_errors(404, 413),
    )
    def visitor_recommendations(
        service: Svc, query: schemas.VisitorQuery
    ) -> schemas.Recommendations:
        """Top ``k`` for a visitor described only by the movies they rated; with
        ``explain``, each movie's ``because`` names the ratings behind it."""
        ratings = service.check_ratings(query.ratings)
        answer = service.recommender.recommend(
            None,
            query.k,
            query.exclude_seen,
            ratings,
            offset=query.offset,
            exclude=query.exclude,
            watched=query.watched,
            not_interested=query.not_interested,
            explain=query.explain,
        )
        return schemas.Recommendations(
            user_id=None,
            known_to_model=False,
            used_ratings=len(ratings),
            used_feedback=len(query.watched) + len(query.not_interested),
            offset=query.offset,
            next_offset=query.offset + len(answer.items),
            items=_movies(answer.items),
            timings_ms=answer.timings_ms,
        )

    @app.post(
        "/users/{user_id}/ratings",
        response_model=schemas.StoredRating,
        status_code=201,
        tags=["ratings"],
        responses=_errors(404, 413),
    )
    def add_rating(service: Svc, user_id: UserId, rating: schemas.RatingIn) -> schemas.StoredRating:
        """Store (or replace) a rating; the user's next answers use it."""
        [(movie_id, stars)] = service.check_ratings([rating], single=True)
        timestamp = int(time.time())
        created = service.store.upsert(user_id, movie_id, stars, timestamp)
        return schemas.StoredRating(
            user_id=user_id, movie_id=movie_id, rating=stars, timestamp=timestamp, created=created
        )

    @app.post(
        "/users/{user_id}/feedback",
        response_model=schemas.StoredFeedback,
        status_code=201,
        tags=["ratings"],
        responses=_errors(404, 413),
    )
    def add_feedback(
        service: Svc, user_id: UserId, feedback: schemas.FeedbackIn
    ) -> schemas.StoredFeedback:
        """Store (or replace) "watched" or "not-interested" for a movie; the user's next
        answers never include it. DELETE the row to undo it."""
        service.check_movies([feedback.movie_id])
        timestamp = int(time.time())
        created = service.store.put_feedback(user_id, feedback.movie_id, feedback.type, timestamp)
        return schemas.StoredFeedback(
            user_id=user_id,
            movie_id=feedback.movie_id,
            type=feedback.type,
            timestamp=timestamp,
            created=created,
        )

    @app.get("/users/{user_id}/feedback", response_model=schemas.UserFeedback, tags=["ratings"])
    def user_feedback(service: Svc, user_id: UserId) -> schemas.UserFeedback:
        """Feedback stored for a user, oldest first (an unknown user simply has none yet)."""
        items = []
        for movie_id, kind, timestamp in service.store.user_feedback(user_id):
            if movie_id in service.movies:
                movie = service.recommender.movie(movie_id).to_dict()
                items.append(
                    schemas.FeedbackMovie(
                        **movie, type=check_feedback_type(kind), timestamp=timestamp
                    )
                )
        return schemas.UserFeedback(user_id=user_id, items=items)

    @app.delete(
        "/users/{user_id}/feedback/{movie_id}",
        response_model=schemas.StoredFeedback,
        tags=["ratings"],
        responses=_errors(404),
    )
    def delete_feedback(service: Svc, user_id: UserId, movie_id: MovieId) -> schemas.StoredFeedback:
        """Undo a feedback row: the movie can be recommended again. 404 when there is none."""
        removed = service.store.delete_feedback(user_id, movie_id)
        if removed is None:
            raise HTTPException(404, f"user {user_id!r} has no feedback on movie {movie_id!r}")
        kind, timestamp = removed
        return schemas.StoredFeedback(
            user_id=user_id,
            movie_id=movie_id,
            type=check_feedback_type(kind),
            timestamp=timestamp,
            created=False,
        )

    @app.get("/users/{user_id}/ratings", response_model=schemas.UserRatings, tags=["ratings"])
    def user_ratings(service: Svc, user_id: UserId) -> schemas.UserRatings:
        """Ratings stored for a user (an unknown user simply has none yet)."""
        rows = []
        for movie_id, stars in service.stored(user_id):
            movie = service.recommender.movie(movie_id)
            movie.predicted_rating = stars
            rows.append(movie)
        return schemas.UserRatings(
            user_id=user_id,
            known_to_model=service.recommender.knows_user(user_id),
            history=len(service.recommender.history(user_id)),
            ratings=_movies(rows),
        )

    @app.post(
        "/rank", response_model=schemas.MovieList, tags=["recommend"], responses=_errors(404, 413)
    )
    def rank(service: Svc, query: schemas.RankQuery) -> schemas.MovieList:
        """Predicted stars for the given movies, best first."""
        ratings = service.stored(query.user_id) if query.user_id is not None else []
        ratings = service.check_ratings(
            [schemas.RatingIn(movie_id=m, rating=r) for m, r in ratings] + (query.ratings or [])
        )
        results = service.recommender.rank(query.user_id, query.movie_ids, ratings)
        return schemas.MovieList(items=_movies(results))

    @app.get("/movies", response_model=schemas.MovieList, tags=["movies"])
    def search(
        service: Svc,
        query: Annotated[
            str,
            Query(
                min_length=1,
                max_length=200,
                json_schema_extra={"pattern": r"\S"},  # checked below, with a clearer message
                description="words that must all appear in the title",
            ),
        ],
        limit: Annotated[int, Query(ge=1, le=schemas.MAX_K)] = 20,
        offset: Offset = 0,
    ) -> schemas.MovieList:
        """Movies whose title contains every word of ``query``, in catalogue order."""
        if not query.split():
            raise _invalid(("query", "query"), "the search has no words", query)
        found = service.recommender.search(query, limit, offset=offset)
        return schemas.MovieList(items=_movies(found))

    @app.get(
        "/movies/{movie_id}", response_model=schemas.Movie, tags=["movies"], responses=_errors(404)
    )
    def movie(service: Svc, movie_id: MovieId) -> schemas.Movie:
        return schemas.Movie(**service.recommender.movie(movie_id).to_dict())

    @app.get(
        "/movies/{movie_id}/similar",
        response_model=schemas.Similar,
        tags=["movies"],
        responses=_errors(404),
    )
    def similar(
        service: Svc,
        movie_id: MovieId,
        k: K = 10,
        offset: Offset = 0,
        exclude: Exclude = [],  # noqa: B006 (FastAPI copies defaults)
    ) -> schemas.Similar:
        """The movies most like this one; ``score_meaning`` says what their scores are."""
        source = service.recommender.movie(movie_id)
        results = service.recommender.similar(movie_id, k, offset=offset, exclude=exclude)
        return schemas.Similar(
            movie=schemas.Movie(**source.to_dict()),
            items=_movies(results),
            score_meaning=service.recommender.similarity_meaning(),
        )

    @app.get("/popular", response_model=schemas.MovieList, tags=["movies"], responses=_errors(404))
    def popular(
        service: Svc,
        k: K = 12,
        user_id: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=MAX_ID_LENGTH,
                pattern=schemas.ID_PATTERN,
                description="leave out the movies this user rated (in training or here) or "
                "gave feedback on; an unknown user has rated none",
            ),
        ] = None,
        offset: Offset = 0,
        exclude: Exclude = [],  # noqa: B006 (FastAPI copies defaults)
    ) -> schemas.MovieList:
        """The movies rated most often in training (the page's start view)."""
        recommender = service.recommender
        left_out = list(exclude)
        if user_id is not None:
            left_out += recommender.history(user_id)
            left_out += [m for m, _ in service.stored(user_id)]
            left_out += [m for m, _ in service.feedback(user_id)]
        movies = recommender.popular(k, offset=offset, exclude=left_out)
        return schemas.MovieList(items=_movies(movies))

    @app.get(
        "/users/{user_id}/history",
        response_model=schemas.MovieList,
        tags=["ratings"],
        responses=_errors(404),
    )
    def user_history(service: Svc, user_id: UserId, k: K = 50) -> schemas.MovieList:
        """A known user's training ratings, best first; predicted_rating holds the stars."""
        if not service.recommender.knows_user(user_id):
            raise UnknownIdError("user", user_id)
        return schemas.MovieList(items=_movies(service.recommender.training_ratings(user_id, k)))
