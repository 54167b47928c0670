"""Neutron's domain: IPAM, ports, NetworkAttachmentDefinition (CNI) configs, cloud-init
network data, security groups as (Multi)NetworkPolicies, floating IPs.

Pure modules: :mod:`.ipam`, :mod:`.mac`, :mod:`.cni`, :mod:`.cloudinit`, :mod:`.policy`,
:mod:`.naming`, :mod:`.association` (what a floating IP maps to, and which events change it),
:mod:`.binding` (a port's binding to its server, a router's check of its networks, and which
events change them), :mod:`.faults` (why a network kind is in ERROR, and whether that is
kstatus' Stalled). Effect modules take a ``kubernetes.client.ApiClient`` explicitly (so tests
can hand them any client): :mod:`.ports` (port and fixed-IP allocation for Servers),
:mod:`.resolve` (network lookup and project isolation), :mod:`.attachments` (NADs),
:mod:`.secgroups` (policy sync of a namespace), :mod:`.floating` (floating IP Services).
"""
