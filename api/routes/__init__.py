"""One router per resource; each takes the process's ApiServices."""
