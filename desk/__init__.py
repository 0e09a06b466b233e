"""The conversation service: customer turns, agent actions, and what keeps them safe.

Everything that runs a conversation's graph thread goes through here, whoever asks (the HTTP
API, ``deskgraph chat``, the evals, later email):

* :mod:`desk.runner`: start a customer turn (detached, idempotent, one at a time);
* :mod:`desk.turns`: one turn or resumed interrupt as events, crash recovery included;
* :mod:`desk.waiting`: a message while a person owns the conversation;
* :mod:`desk.after_review`: the turns owed to messages sent during a draft review;
* :mod:`desk.actions`: agent actions on an interrupt, applied exactly once;
* :mod:`desk.gate`: the per-conversation lock and lease;
* :mod:`desk.stream`: the one reader of a graph run (events of :mod:`graph.events`);
* :mod:`desk.probe`: a question answered in a fresh conversation, for evals and probes;
* :mod:`desk.errors`: why a turn or an action was refused (stable codes, no HTTP);
* :mod:`desk.service`: the :class:`~desk.service.Desk` a process builds once.
"""
