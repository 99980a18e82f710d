"""Latency, turn-taking and capacity benchmarks: programs that drive real AgentSessions against the
Realtime simulator with caller audio paced in real time, print tables and write bench/results/."""
