//! A dedup key opened through the module key API.
//!
//! The crate's `RedisKeyWritable` has no absolute-expiry calls, and the module needs them: replies
//! and replication both use the same absolute expiry time, so a replica or an AOF replay never
//! lengthens a lease. This wrapper keeps the few raw calls in one place.

use redis_module::{raw, Context, RedisString};

use crate::entry::{Entry, EntryRef, Expiry};
use crate::errors::CommandError;
use crate::persistence::DEDUP_TYPE;

/// The current Unix time in milliseconds, from Redis's clock.
pub fn now_ms() -> i64 {
    // SAFETY: RedisModule_Milliseconds takes no arguments and is set once the module is loaded.
    unsafe { raw::RedisModule_Milliseconds.expect("RedisModule_Milliseconds")() }
}

/// An open key; closed on drop.
pub struct EntryKey {
    key: *mut raw::RedisModuleKey,
}

impl EntryKey {
    /// Opens for reading and writing. Redis returns a handle even for a missing key.
    pub fn writable(ctx: &Context, name: &RedisString) -> EntryKey {
        EntryKey { key: raw::open_key(ctx.ctx, name.inner, raw::KeyMode::READ | raw::KeyMode::WRITE) }
    }

    /// Opens for reading only (replicas and read-only ACLs accept it). The handle is null for a
    /// missing key.
    pub fn readable(ctx: &Context, name: &RedisString) -> EntryKey {
        EntryKey { key: raw::open_key(ctx.ctx, name.inner, raw::KeyMode::READ) }
    }

    /// The entry and its expiry, `None` for a missing key, WRONGTYPE for any other kind of key.
    ///
    /// The returned reference points into Redis's keyspace and is valid until the key is
    /// written, deleted or closed; callers finish reading before they apply an effect.
    pub fn stored(&self) -> Result<Option<(EntryRef<'_>, Expiry)>, CommandError> {
        if self.key.is_null() {
            return Ok(None);
        }
        // SAFETY: `self.key` is an open, non-null key handle.
        let kind: raw::KeyType = unsafe { raw::RedisModule_KeyType.expect("KeyType")(self.key) }.into();
        match kind {
            raw::KeyType::Empty => return Ok(None),
            raw::KeyType::Module => {}
            _ => return Err(CommandError::WrongType),
        }
        // SAFETY: as above; the type pointer is only compared.
        let module_type = unsafe { raw::RedisModule_ModuleTypeGetType.expect("GetType")(self.key) };
        if module_type != *DEDUP_TYPE.raw_type.borrow() {
            return Err(CommandError::WrongType);
        }
        // SAFETY: the key holds our type, whose values always come from `Entry::into_raw`, and
        // the borrow ends before this key handle is used to write.
        let entry = unsafe {
            Entry::borrow_raw(raw::RedisModule_ModuleTypeGetValue.expect("GetValue")(self.key))
        };
        Ok(Some((entry, self.expiry())))
    }

    fn expiry(&self) -> Expiry {
        // SAFETY: only called on an open key that holds a value.
        let at = unsafe { raw::RedisModule_GetAbsExpire.expect("GetAbsExpire")(self.key) };
        if at == raw::REDISMODULE_NO_EXPIRE as i64 {
            Expiry::Never
        } else {
            Expiry::At(at)
        }
    }

    /// Stores `entry`, replacing what was there, to expire at `expires_at` (absolute Unix ms), or
    /// never for `None`: Redis drops any old expiry when a value is replaced.
    pub fn store(&self, entry: Entry, expires_at: Option<i64>) {
        let value = entry.into_raw();
        // SAFETY: the key is open for writing (only `writable` keys reach here), and Redis now
        // owns the value and frees it through the type's `free` callback.
        unsafe {
            raw::RedisModule_ModuleTypeSetValue.expect("SetValue")(
                self.key,
                *DEDUP_TYPE.raw_type.borrow(),
                value,
            );
        }
        if let Some(at) = expires_at {
            self.expire_at(at);
        }
    }

    /// Sets an absolute expiry in Unix milliseconds.
    pub fn expire_at(&self, at_ms: i64) {
        // SAFETY: the key is open for writing and holds a value.
        unsafe { raw::RedisModule_SetAbsExpire.expect("SetAbsExpire")(self.key, at_ms) };
    }

    pub fn delete(&self) {
        // SAFETY: the key is open for writing.
        unsafe { raw::RedisModule_DeleteKey.expect("DeleteKey")(self.key) };
    }
}

impl Drop for EntryKey {
    fn drop(&mut self) {
        if !self.key.is_null() {
            // SAFETY: the handle came from OpenKey and is closed exactly once.
            unsafe { raw::RedisModule_CloseKey.expect("CloseKey")(self.key) };
        }
    }
}
