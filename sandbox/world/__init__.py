"""The simulated sales world behind the sandbox: leads, reps with skills, outcomes with delays."""
