//go:build tools

// Package tools pins the command this module builds (the etcd server module root is package main).
package tools

import _ "go.etcd.io/etcd/server/v3"
