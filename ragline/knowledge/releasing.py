"""Releasing index versions: promote (refusing a version that failed its checks unless
forced with a reason, which is recorded), roll back to the version before, and drop old
versions' collections. The alias moves in one call; every move is recorded."""

from __future__ import annotations

import getpass
from datetime import timedelta

import structlog
from sqlmodel import Session, col, select

from ragline import audit
from ragline.audit import SYSTEM, Actor
from ragline.errors import InvalidInput
from ragline.knowledge.catalog import VersionCatalog, version_of
from ragline.models import IndexPromotion, IndexVersion, Job, utcnow

log = structlog.get_logger("ragline.index")

ABANDONED_AFTER = timedelta(hours=1)  # a version still "building" this long was killed


class IndexReleases(VersionCatalog):
    # -- moving the alias ------------------------------------------------------------------------

    def promote(
        self,
        version: int,
        *,
        force: bool = False,
        reason: str = "",
        by: str = "",
        actor: Actor = SYSTEM,
    ) -> IndexVersion:
        manifest = self.get(version)
        if manifest.status != "ready":
            raise InvalidInput(f"index version {version} is {manifest.status}, not ready")
        passed = bool(manifest.checks.get("passed", False))
        if not passed and not force:
            failures = "; ".join(manifest.checks.get("failures", [])) or "not checked"
            raise InvalidInput(
                f"index version {version} failed its checks: {failures}. "
                "Promote anyway with --force --reason '…'"
            )
        if not passed and not reason.strip():
            raise InvalidInput("--force needs --reason: it is recorded with the promotion")
        self._require_collection(manifest)
        return self._move_alias(
            manifest, "promote", forced=not passed, reason=reason, by=by, actor=actor
        )

    def rollback(self, *, by: str = "", reason: str = "", actor: Actor = SYSTEM) -> IndexVersion:
        target = self.previous_version()
        if target is None:
            raise InvalidInput("there is no earlier promoted version to roll back to")
        manifest = self.get(target)
        self._require_collection(manifest)
        return self._move_alias(
            manifest, "rollback", forced=False, reason=reason, by=by, actor=actor
        )

    def _move_alias(
        self,
        manifest: IndexVersion,
        action: str,
        *,
        forced: bool,
        reason: str,
        by: str,
        actor: Actor,
    ) -> IndexVersion:
        previous = self.active_version()
        if previous == manifest.version:
            # Already there (a retried deploy): recording it would make the version its own
            # rollback target and leave the real previous one unprotected from gc.
            log.info("index_already_active", version=manifest.version)
            return manifest
        self.store.point_alias(self.alias, manifest.collection)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(
                IndexPromotion(
                    version=manifest.version,
                    previous_version=previous,
                    action=action,
                    forced=forced,
                    reason=reason,
                    by=by or (actor.label if actor != SYSTEM else getpass.getuser()),
                )
            )
            row = session.get(IndexVersion, manifest.version)
            assert row is not None
            row.promoted_at = utcnow()
            session.add(row)
            audit.append(
                session,
                actor,
                f"index.{action}",
                f"index:{manifest.version}",
                before={"active_version": previous},
                after={"active_version": manifest.version, "forced": forced, "reason": reason},
            )
            session.commit()
            session.refresh(row)
        self.store.alias_moved(self.alias)
        log.info(
            f"index_{action}d" if action == "promote" else "index_rolled_back",
            version=manifest.version,
            previous_version=previous,
            alias=self.alias,
            forced=forced,
            reason=reason or None,
        )
        return row

    # -- clean-up ------------------------------------------------------------------------------

    def gc(
        self, keep: int, *, force: bool = False, reason: str = "", actor: Actor = SYSTEM
    ) -> list[int]:
        """Drop the collections of all but the newest `keep` ready versions, of failed and
        abandoned builds; never the active or the previous version, nor (unless forced,
        with a reason, which is logged) one that jobs of the last knowledge.keep_cited_days
        were answered from. Returns the versions dropped (their manifests stay, marked
        deleted; the jobs keep their passages' text)."""
        if keep < 1:
            raise InvalidInput("--keep must be at least 1", field="keep")
        if force and not reason.strip():
            raise InvalidInput("--force needs --reason: it is logged with what it dropped")
        protected = {self.active_version(), self.previous_version()}
        cited = self.cited_versions()
        if not force:
            protected |= cited
        listings = [listing.manifest for listing in self.list_versions()]
        ready = sorted((m.version for m in listings if m.status == "ready"), reverse=True)
        protected |= set(ready[:keep])
        now = utcnow()
        dropped = []
        for manifest in listings:
            abandoned = (
                manifest.status == "building" and now - manifest.created_at > ABANDONED_AFTER
            )
            if manifest.version in protected or manifest.status == "deleted":
                continue
            if manifest.status in ("ready", "failed") or abandoned:
                self.store.delete_collection(manifest.collection)
                was_cited = manifest.version in cited
                self._mark_deleted(manifest, actor, keep, reason if was_cited else "")
                dropped.append(manifest.version)
        forced = sorted(cited & set(dropped))
        log.info("index_gc", dropped=dropped, keep=keep, forced=forced, reason=reason or None)
        return dropped

    def cited_versions(self) -> set[int]:
        """The versions jobs of the last knowledge.keep_cited_days were answered from."""
        since = utcnow() - timedelta(days=self.knowledge.keep_cited_days)
        with Session(self.engine) as session:
            collections = session.exec(
                select(Job.index_version)
                .where(col(Job.created_at) >= since, col(Job.index_version).is_not(None))
                .distinct()
            ).all()
        return {v for c in collections if c and (v := version_of(c)) is not None}

    def _mark_deleted(self, manifest: IndexVersion, actor: Actor, keep: int, forced: str) -> None:
        """forced: the reason given for dropping a version recent jobs cite, else ""."""
        with Session(self.engine) as session:
            row = session.get(IndexVersion, manifest.version)
            if row is not None:
                audit.append(
                    session,
                    actor,
                    "index.gc",
                    f"index:{manifest.version}",
                    before={"status": row.status},
                    after={"status": "deleted", "keep": keep, "forced_reason": forced or None},
                )
                row.status = "deleted"
                session.add(row)
                session.commit()
