"""THE decision: a call, a grant and facts in, a Verdict out. Pure."""
