//! `lanyard seed export`: the current clients, users and APIs as a seed file.

use clap::Subcommand;

use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// Print the clients, users and APIs as a seed file (TOML; secrets and passwords omitted).
    Export,
}

impl SeedCommand {
    pub async fn run(self, store: &Store) -> anyhow::Result<()> {
        let Self::Export = self;
        print!("{}", crate::seed::export(store).await?);
        Ok(())
    }
}
