"""What people are told: every text (texts), composing messages (compose), and who hears
what (tell: the resident where they reported, staff privately, one escalation ladder)."""
