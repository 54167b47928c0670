"""Nova's compute logic, pure: scheduler requests, the KubeVirt VM a Server becomes,
cloud-init user data, and the Server state read back from the VM and its VMI."""
