"""Leaderboards: tables (Markdown, CSV, HTML) and plots rendered from a run folder."""
from harness.leaderboard.render import LeaderboardSpec, load_spec, render_leaderboard

__all__ = ["LeaderboardSpec", "load_spec", "render_leaderboard"]
