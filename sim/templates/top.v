`timescale 1 ns / 1 ps
// fraudfpga top level of {what}.
// The pipeline ({core}) takes one transaction per clock (II = 1) and has no
// handshake; this wrapper tracks validity through a shift register of the pipeline's latency
// and presents the output in the firmware's result type.
module {top} (
    input  wire                 clk,
    input  wire                 rst,       // synchronous, active high; clears out_valid
{enable_port}    input  wire                 in_valid,
    input  wire [{in_msb}:0]    in_data,   // {n_in} x {input_type}, input 0 in bits [{in_width_m1}:0]
    output wire                 out_valid,
    output wire [{out_msb}:0]   out_data   // score, {output_type}
);
    localparam integer LATENCY = {latency};

    reg [LATENCY-1:0] valid_pipe;
    always @(posedge clk) begin
        if (rst) valid_pipe <= {{LATENCY{{1'b0}}}};
        else {enable_guard}valid_pipe <= {valid_shift};
    end
    assign out_valid = valid_pipe[LATENCY-1];

    wire [{core_in_msb}:0] core_in = {core_in};
    wire [{core_out_msb}:0] core_out;
    {core} core (.clk(clk), {enable_connection}.model_inp(core_in), .model_out(core_out));
    assign out_data = {out_assign};
endmodule
