//! The test lab's clock setting (`test_clock`), shared by every server on the database.

use sqlx::Row;

use super::{Reach, Result, Store};
use crate::clock::{ClockSetting, real_now};

impl Store {
    /// The stored setting (the wall clock when none is stored).
    pub async fn clock_setting(&self) -> Result<ClockSetting> {
        let row = sqlx::query("SELECT offset_seconds, frozen_at FROM test_clock WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => {
                ClockSetting { offset_seconds: row.try_get("offset_seconds")?, frozen_at: row.try_get("frozen_at")? }
            }
            None => ClockSetting::default(),
        })
    }

    /// Reads the stored setting and makes it this process's clock.
    pub async fn load_clock(&self) -> Result<ClockSetting> {
        let setting = self.clock_setting().await?;
        self.clock().apply(setting);
        Ok(setting)
    }

    /// Stores a setting, applies it here, and returns once every live server has applied
    /// it too (as for a rotated secret): a test that moves time and then calls another
    /// replica must find the new time there.
    pub async fn set_clock_setting(&self, setting: ClockSetting) -> Result<()> {
        sqlx::query(
            "INSERT INTO test_clock (id, offset_seconds, frozen_at, updated_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET offset_seconds = excluded.offset_seconds, \
             frozen_at = excluded.frozen_at, updated_at = excluded.updated_at",
        )
        .bind(setting.offset_seconds)
        .bind(setting.frozen_at)
        .bind(real_now())
        .execute(&self.pool)
        .await?;
        self.clock().apply(setting);
        self.registry_changed(Reach::AtOnce).await;
        Ok(())
    }
}
