"""What a server recovers from deterministic 'encryptions': algebraic and substitution attacks, the suite."""
