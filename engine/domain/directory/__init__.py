"""Configuration that is itself audited: queues (teams), agents and API credentials, with
the roles and the bootstrap marker; ``from engine.domain import directory`` gives all of it.

Queues and credentials are addressed by natural keys (queue name, key hash), so their ids
are derived and no lookup index is needed."""

from __future__ import annotations

from engine.domain.directory.agent import KIND as AGENT_KIND
from engine.domain.directory.agent import (
    Agent,
    AgentDroppedTicket,
    AgentEvent,
    AgentRegistered,
    AgentTookTicket,
    AgentUpdated,
    agent_of,
    agent_principal,
    drop_ticket,
    evolve_agent,
    register_agent,
    take_ticket,
    update_agent,
)
from engine.domain.directory.credential import KIND as CREDENTIAL_KIND
from engine.domain.directory.credential import (
    Credential,
    CredentialIssued,
    CredentialRevoked,
    credential_id,
    evolve_credential,
    issue_credential,
    revoke_credential,
)
from engine.domain.directory.queue import KIND as QUEUE_KIND
from engine.domain.directory.queue import (
    Queue,
    QueueCreated,
    create_queue,
    evolve_queue,
    queue_id,
)
from engine.domain.directory.roles import (
    Role,
)
from engine.domain.directory.system import (
    BOOTSTRAP_ID,
    SystemBootstrapped,
)

__all__ = [
    "AGENT_KIND",
    "CREDENTIAL_KIND",
    "QUEUE_KIND",
    "Agent",
    "AgentDroppedTicket",
    "AgentEvent",
    "AgentRegistered",
    "AgentTookTicket",
    "AgentUpdated",
    "agent_of",
    "agent_principal",
    "BOOTSTRAP_ID",
    "Credential",
    "CredentialIssued",
    "CredentialRevoked",
    "Queue",
    "QueueCreated",
    "Role",
    "SystemBootstrapped",
    "create_queue",
    "credential_id",
    "drop_ticket",
    "evolve_agent",
    "evolve_credential",
    "evolve_queue",
    "issue_credential",
    "queue_id",
    "register_agent",
    "revoke_credential",
    "take_ticket",
    "update_agent",
]
