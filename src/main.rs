fn main() -> std::process::ExitCode {
    lanyard::cli::run()
}
