"""`/rewards`: the transparency page. Anyone can see how big this instance's rewards log is, its latest
checkpoint and which witnesses cosigned it, the logs this instance witnesses, and how many alerts are open.

Everything here is also served as data (`/rewards/log/checkpoint`, `/.well-known/rewards`,
`/rewards/policy`), so what the page says can be checked with `fedserver rewards verify`.
"""

from __future__ import annotations

from aiohttp import web

from rewards.logstore import get_state
from rewards.note import parse_note
from rewards.store import count_open_alerts, list_witnessed_logs
from rewards.web import RUNTIME

from ..app_keys import POOL
from ..errors import HTTPError
from ..templates import render_page


async def rewards_page_get(request: web.Request) -> web.Response:
    ctx = request.config_dict[RUNTIME].ctx
    if ctx is None:
        raise HTTPError(503, "rewards are starting")
    async with request.config_dict[POOL].acquire() as conn:
        state = await get_state(conn)
        alerts = await count_open_alerts(conn)
        witnessed = await list_witnessed_logs(conn)
    checkpoint = state.published_checkpoint.decode() if state.published_checkpoint else None
    signers = {s.key_id for s in parse_note(checkpoint).signatures} if checkpoint else set()
    witnesses = [{"name": w.name, "key_name": w.verifier.name, "cosigned": w.verifier.key_id in signers}
                 for w in ctx.policy().witnesses]
    return render_page(request, "rewards.html", origin=ctx.keys.origin, size=state.published_size or 0,
                       checkpoint=checkpoint, witnesses=witnesses, alerts=alerts,
                       witnessed=[{"origin": r["origin"], "size": r["size"], "at": r["updated_at"]} for r in witnessed])


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/rewards", rewards_page_get)
