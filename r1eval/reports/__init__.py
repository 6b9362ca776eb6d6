"""What people read: terminal tables, leaderboard CSVs and the self-contained HTML report."""
