fn main() -> std::process::ExitCode {
    sluice::allocator::tune();
    sluice::cli::main()
}
