"""The email channel: IMAP in (fetch), parsing, threading, SMTP out (send)."""
