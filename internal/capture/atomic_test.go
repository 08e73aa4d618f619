package capture

import "sync/atomic"

type atomicInt struct{ v atomic.Int64 }

func (a *atomicInt) add(n int) { a.v.Add(int64(n)) }
func (a *atomicInt) get() int  { return int(a.v.Load()) }
