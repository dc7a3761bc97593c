"""Server-rendered views of player state: the leaderboard and level bar (the widgets issue
grows these into the embeddable LTI widgets)."""
